// The main job: TinyStories-656K (../shared/data/tinystories-656k) quantized with every weight format the library
// writes, round to nearest and GPTQ, each scored with the perplexity protocol of ../shared/data/README.md (8 windows
// of BOS + 255 tokens over the first 20,000 characters of tinystories/val-sample.txt). GPTQ calibrates on 32 windows
// taken from the stories after those 20,000 characters, so nothing it sees is scored. Prints the table, plots
// perplexity against bits per weight, and saves the GPTQ INT4 model as a compressed-tensors checkpoint.
//
//   dotnet run --project samples/QuickStart -c Release [-- --out out/quickstart] [--plots out/plots]
//
// Groups of 32, not 128: the model's hidden size is 128, so six of its seven linear layers per block have 128 input
// columns and g128 would be one scale per row (per-channel) there; g32 gives the groups that a large model's g128
// gives relative to its width. Group scales are stored in float16 (0.5 bit per weight at g32), as vLLM's kernels take.

using System.Diagnostics;
using System.Globalization;
using Compression;
using Compression.Quantization;
using Compression.Samples;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;
using ScottPlot;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int outIndex = Array.IndexOf(args, "--out");
string outputFolder = Path.GetFullPath(outIndex >= 0 && outIndex + 1 < args.Length ? args[outIndex + 1] : Path.Combine("out", "quickstart"));
string plots = SamplePlots.Folder(args);
var total = Stopwatch.StartNew();

TinyStoriesData data = TinyStoriesData.Load();
int[][] calibration = data.CalibrationSequences(32);

RtnOptions int4 = new() { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), ScaleStorage = ScaleEncoding.Float16 };
RtnOptions int3 = int4 with { Format = NumberFormat.Int3 };
QuantizerOptions Gptq(QuantizerOptions options) => options with { Method = QuantizationMethod.Gptq, Gptq = new GptqOptions() };
var schemes = new (string Name, QuantizerOptions? Options)[]
{
    ("FP32 (as stored)", null),
    ("INT8 per-channel, RTN", QuantizerOptions.W8A16),
    ("FP8 E4M3 per-channel, RTN", QuantizerOptions.Fp8A16),
    ("INT4 g128, RTN", QuantizerOptions.W4A16),
    ("INT4 g32, RTN", QuantizerOptions.W4A16 with { Quantization = int4 }),
    ("INT4 g32, GPTQ", Gptq(QuantizerOptions.W4A16 with { Quantization = int4 })),
    ("MXFP4, RTN", QuantizerOptions.Mxfp4A16),
    ("MXFP4, GPTQ", Gptq(QuantizerOptions.Mxfp4A16)),
    ("NVFP4, RTN", QuantizerOptions.Nvfp4A16),
    ("NVFP4, GPTQ", Gptq(QuantizerOptions.Nvfp4A16)),
    ("INT3 g32, RTN", QuantizerOptions.W3A16 with { Quantization = int3 }),
    ("INT3 g32, GPTQ", Gptq(QuantizerOptions.W3A16 with { Quantization = int3 })),
};
const string Saved = "INT4 g32, GPTQ";

var results = new List<(string Name, double Bits, double Perplexity, double Seconds)>();
long parameters = 0, linearWeights = 0;
string savedLine = "";
foreach ((string name, QuantizerOptions? options) in schemes)
{
    using CausalLanguageModel model = TinyStoriesData.LoadModel();
    var clock = Stopwatch.StartNew();
    QuantizationReport? report = options is null ? null
        : ConsoleProgress.Run($"{name}", progress => Quantizer.Apply(model, options, calibration, progress));
    double seconds = clock.Elapsed.TotalSeconds;
    double perplexity = data.Perplexity(model);
    if (report is null)
    {
        // The tied embedding is one tensor: count each parameter tensor once.
        parameters = model.parameters().DistinctBy(p => p.Handle).Sum(p => p.numel());
    }
    else
    {
        // Every scheme quantizes the same layers: all linear layers but the (tied) head.
        linearWeights = report.Layers.Sum(l => (long)l.Rows * l.Columns);
    }

    double bits = report is null ? 32 : report.Layers.Sum(l => l.BitsPerWeight * l.Rows * l.Columns) / report.Layers.Sum(l => (double)l.Rows * l.Columns);
    results.Add((name, bits, perplexity, seconds));
    Console.Error.WriteLine($"{name}: perplexity {perplexity:F3}");

    if (name == Saved)
    {
        // Pack: the fake-quantized float32 weights become QuantizedLinear layers holding the codes and scales; then
        // write the compressed-tensors layout that llm-compressor writes and vLLM reads, and load it back.
        Quantizer.Pack(model, report!);
        if (Directory.Exists(outputFolder))
        {
            Directory.Delete(outputFolder, recursive: true);
        }

        CompressedModels.Save(model, outputFolder);
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
        {
            string source = Path.Combine(TinyStoriesData.ModelFolder, file);
            if (File.Exists(source))
            {
                File.Copy(source, Path.Combine(outputFolder, file), overwrite: true);
            }
        }

        using CausalLanguageModel reloaded = HuggingFaceModels.Load(outputFolder);
        double again = data.Perplexity(reloaded);
        long fileBytes = new FileInfo(Path.Combine(outputFolder, "model.safetensors")).Length;
        long originalBytes = new FileInfo(Path.Combine(TinyStoriesData.ModelFolder, "model.safetensors")).Length;
        Console.Error.WriteLine($"saved {outputFolder}: model.safetensors {Numbers.Bytes(fileBytes)} bytes (FP32 checkpoint {Numbers.Bytes(originalBytes)}); " +
                                $"reloaded perplexity {again:F3}{(again == perplexity ? ", identical" : $", differs from {perplexity:F3}")}");
        savedLine = $"GPTQ INT4 g32 saved as compressed-tensors to {outputFolder}: model.safetensors {Numbers.Bytes(fileBytes)} bytes " +
                    $"(the FP32 checkpoint: {Numbers.Bytes(originalBytes)}); loaded back, perplexity {again:F3}.";
    }
}

// Model size: the linear weights at their bits per weight (scales and zero points included), the rest (embedding,
// norms) in float32 as stored.
long restBytes = 4 * (parameters - linearWeights);
double baseline = results[0].Perplexity;
var table = new MarkdownTable("scheme", "bits/weight", "model size, bytes (linear + rest)", "perplexity", "Δ perplexity", "quantization time");
foreach ((string name, double bits, double perplexity, double seconds) in results)
{
    long linearBytes = (long)Math.Ceiling(bits * linearWeights / 8);
    bool original = name == results[0].Name;
    table.Add(name, bits.ToString("F3"), $"{Numbers.Bytes(linearBytes + restBytes)} ({Numbers.Bytes(linearBytes)} + {Numbers.Bytes(restBytes)})",
        perplexity.ToString("F3"), original ? "" : Numbers.Signed(perplexity - baseline, "F3"), original ? "" : $"{seconds:F1} s");
}

Console.WriteLine($"TinyStories-656K ({parameters:N0} parameters, {linearWeights:N0} in the quantized linear layers); perplexity over 8 windows of BOS + 255 tokens");
Console.WriteLine();
Console.WriteLine(table);
Console.WriteLine(savedLine);

// Perplexity against bits per weight: the FP32 model as a reference line, RTN and GPTQ as two series.
var plot = new Plot();
// (A solid line: Skia's SVG backend cannot draw dash effects.)
plot.Add.HorizontalLine(baseline, 1.5f, Colors.Gray).LegendText = $"FP32 ({baseline:F2})";
foreach ((string method, Color color) in new[] { ("RTN", Colors.SteelBlue), ("GPTQ", Colors.OrangeRed) })
{
    var series = results.Where(p => p.Name.EndsWith(method, StringComparison.Ordinal)).ToArray();
    var scatter = plot.Add.ScatterPoints(series.Select(p => p.Bits).ToArray(), series.Select(p => p.Perplexity).ToArray(), color);
    scatter.MarkerSize = 9;
    scatter.LegendText = method;
    foreach (var p in series)
    {
        var label = plot.Add.Text(p.Name[..p.Name.IndexOf(',', StringComparison.Ordinal)], p.Bits, p.Perplexity);
        label.LabelFontSize = 11;
        label.LabelFontColor = color;
        label.LabelAlignment = method == "RTN" ? Alignment.LowerLeft : Alignment.UpperLeft;
        label.OffsetX = 5;
    }
}

plot.Title("TinyStories-656K: perplexity vs bits per weight of the linear layers");
plot.XLabel("bits per weight (scales included)");
plot.YLabel("perplexity (8 windows of BOS + 255 tokens)");
plot.Axes.SetLimitsX(3, 9);
plot.ShowLegend(Alignment.UpperRight);
Console.WriteLine($"plot: {SamplePlots.Save(plot, plots, "quickstart-perplexity-vs-bits")} (and .svg)");
Console.WriteLine($"total {total.Elapsed.TotalSeconds:F0} s");
return 0;
