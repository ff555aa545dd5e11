// Quantizes the two shakespeare-char models of ../shared/data with every scheme of docs/results.md and measures their
// validation loss with the protocol of ../shared/data/README.md; prints the Markdown table (and writes it to the path
// given as the first argument, e.g. docs/results.md.table).
//   dotnet run -c Release --project samples/QuantizeShakespeare [output.md|-] [windows] [scheme filter]
// windows: how many validation windows of 256 to score (default: all 435); the filter keeps the schemes whose name
// contains it, or any of its '|'-separated parts (the BF16 baseline always runs).

using System.Diagnostics;
using System.Globalization;
using System.Text;
using Compression;
using Compression.Quantization;
using Compression.Quantization.Rotation;
using Compression.Samples;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string? outputPath = args.Length > 0 && args[0] != "-" ? args[0] : null;
int windows = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : int.MaxValue;
string filter = args.Length > 2 ? args[2] : "";

// The shakespeare-char protocol (samples/Shared/ShakespeareData.cs): 90% / 10% split, 32 calibration windows of 256
// characters spread evenly over the training split (the same as docs/results.md).
ShakespeareData corpus = ShakespeareData.Load(windows);
int[] train = corpus.Train, validation = corpus.Validation;
int[][] calibration = corpus.Calibration;
GptqOptions gptq = new();
var schemes = new (string Name, QuantizerOptions? Options)[]
{
    ("BF16 (as stored)", null),
    ("INT8 per-channel, RTN", QuantizerOptions.W8A16),
    ("FP8 E4M3 per-channel, RTN", QuantizerOptions.Fp8A16),
    ("INT4 g128, RTN", QuantizerOptions.W4A16),
    ("INT4 g128, GPTQ", QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq, Gptq = gptq }),
    ("INT4 g128, GPTQ act-order", QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq, Gptq = gptq with { ActOrder = true } }),
    ("INT3 g128, RTN", QuantizerOptions.W3A16),
    ("INT3 g128, GPTQ", QuantizerOptions.W3A16 with { Method = QuantizationMethod.Gptq, Gptq = gptq }),
    ("INT3 g128, GPTQ act-order", QuantizerOptions.W3A16 with { Method = QuantizationMethod.Gptq, Gptq = gptq with { ActOrder = true } }),
    ("MXFP4, RTN", QuantizerOptions.Mxfp4A16),
    ("MXFP4, GPTQ", QuantizerOptions.Mxfp4A16 with { Method = QuantizationMethod.Gptq, Gptq = gptq }),
    ("MXFP4, MR-GPTQ", QuantizerOptions.Mxfp4A16 with
    {
        Quantization = RtnOptions.Mxfp4 with { Clipping = ClippingSearch.Default },
        Method = QuantizationMethod.Gptq,
        Gptq = gptq with { ActOrder = true, StaticGroups = true, Rotation = new HadamardRotationParameters(32, SignSeed: 1) },
    }),
    ("NVFP4, RTN", QuantizerOptions.Nvfp4A16),
    ("NVFP4, GPTQ", QuantizerOptions.Nvfp4A16 with { Method = QuantizationMethod.Gptq, Gptq = gptq }),
    ("NVFP4, MR-GPTQ", QuantizerOptions.Nvfp4A16 with
    {
        Quantization = RtnOptions.Nvfp4 with { Clipping = ClippingSearch.Default },
        Method = QuantizationMethod.Gptq,
        Gptq = gptq with { ActOrder = true, StaticGroups = true, Rotation = new HadamardRotationParameters(16, SignSeed: 1) },
    }),
};

var table = new StringBuilder();
table.AppendLine("| scheme | GPT-2 loss | GPT-2 ppl | Δ loss | Llama loss | Llama ppl | Δ loss | bits/weight of the linear layers, GPT-2 / Llama | quantization time, GPT-2 / Llama |");
table.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
var baseline = new Dictionary<string, double>();
foreach ((string name, QuantizerOptions? options) in schemes.Where(s => s.Options is null || filter.Split('|').Any(f => s.Name.Contains(f, StringComparison.Ordinal))))
{
    var cells = new List<string> { name };
    string bits = "", times = "";
    foreach (string model in new[] { "gpt2-shakespeare-char", "llama-shakespeare-char" })
    {
        using CausalLanguageModel lm = HuggingFaceModels.Load(DataFolder.File(model));
        double seconds = 0;
        if (options is not null)
        {
            var clock = Stopwatch.StartNew();
            QuantizationReport report = Quantizer.Apply(lm, options, calibration);
            seconds = clock.Elapsed.TotalSeconds;
            long weights = report.Layers.Sum(l => (long)l.Rows * l.Columns);
            bits += (bits.Length > 0 ? " / " : "") + (report.Layers.Sum(l => l.BitsPerWeight * l.Rows * l.Columns) / weights).ToString("F3");
        }

        LanguageModelScore score = LanguageModelEvaluator.Evaluate(lm, validation, window: 256, batchSize: 32);
        if (options is null)
        {
            baseline[model] = score.Loss;
        }

        double delta = score.Loss - baseline[model];
        cells.Add(score.Loss.ToString("F4"));
        cells.Add(score.Perplexity.ToString("F3"));
        cells.Add(options is null ? "" : $"{Numbers.Signed(delta, "F4")} ({Numbers.Signed(100 * delta / baseline[model], "F2")}%)");
        times += (times.Length > 0 ? " / " : "") + (options is null ? "" : $"{seconds:F1} s");
        Console.Error.WriteLine($"{name}, {model}: loss {score.Loss:F4} ({seconds:F1} s)");
    }

    cells.Add(options is null ? "16" : bits);
    cells.Add(times.Trim(' ', '/'));
    table.AppendLine("| " + string.Join(" | ", cells) + " |");
}

Console.WriteLine(table);
if (outputPath is not null)
{
    File.WriteAllText(outputPath, table.ToString());
}

