// Fine-tunes TinyStories-656K, a model of children's stories, on Shakespeare with LoRA (rank-8 adapters on every
// linear layer of the blocks, the FP32 base frozen) and with QLoRA (the same adapters over a base quantized to INT4
// g32 and packed: the base dequantizes for each forward pass and is never written). Prints and plots the training
// and held-out loss curves, how much of TinyStories each forgets, and saves both adapters in PEFT's layout.
// Training text: the first 90% of tinyshakespeare/input.txt; held-out: 8 windows of BOS + 255 tokens from the last 10%.
//
//   dotnet run --project samples/LoraFinetune -c Release [-- steps] [--out out/lora] [--plots out/plots]

using System.Diagnostics;
using System.Globalization;
using Compression;
using Compression.Quantization;
using Compression.Samples;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Models;
using ScottPlot;
using TorchSharp;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int steps = args.Length > 0 && int.TryParse(args[0], CultureInfo.InvariantCulture, out int s) ? s : 100;
int outIndex = Array.IndexOf(args, "--out");
string outputFolder = Path.GetFullPath(outIndex >= 0 && outIndex + 1 < args.Length ? args[outIndex + 1] : Path.Combine("out", "lora"));
string plots = SamplePlots.Folder(args);
var total = Stopwatch.StartNew();

TinyStoriesData stories = TinyStoriesData.Load();
string shakespeare = File.ReadAllText(DataFolder.File("tinyshakespeare", "input.txt"));
int split = (int)(0.9 * shakespeare.Length);
// 300,000 characters of the training part are plenty for a few hundred steps of 8 windows; the held-out text starts
// at the validation split, as the shakespeare-char protocol's.
int[] train = stories.Tokenizer.Encode(shakespeare[..300_000]);
int[] heldOut = stories.Tokenizer.Encode(shakespeare[split..(split + 40_000)])[..(8 * (TinyStoriesData.Window - 1))];

const int Batch = 8, EvaluateEvery = 25;
var lora = new LoraOptions { Rank = 8, Alpha = 16, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], Seed = 1 };
var table = new MarkdownTable("method", "base weights", "trainable parameters", "held-out loss before → after", "TinyStories perplexity before → after", "time");
var plot = new Plot();
foreach (string method in new[] { "LoRA", "QLoRA" })
{
    using CausalLanguageModel model = TinyStoriesData.LoadModel();
    string baseWeights = "FP32";
    if (method == "QLoRA")
    {
        // The 4-bit base: INT4 groups of 32 with float16 scales (4.5 bits per weight), packed.
        var int4 = QuantizerOptions.W4A16 with { Quantization = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), ScaleStorage = ScaleEncoding.Float16 } };
        Quantizer.Pack(model, Quantizer.Apply(model, int4));
        baseWeights = "INT4 g32, packed";
    }

    double storiesBefore = stories.Perplexity(model);
    AdapterReport adapters = Lora.Apply(model, lora);
    using var optimizer = torch.optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 2e-3, weight_decay: 0);
    var clock = Stopwatch.StartNew();
    List<LossPoint> curve = ConsoleProgress.Run($"{method}, {steps} steps", progress =>
        TrainingLoop.Run(model, optimizer, train, heldOut, steps, Batch, TinyStoriesData.Window, TinyStoriesData.Bos, EvaluateEvery, progress));
    double seconds = clock.Elapsed.TotalSeconds;
    double storiesAfter = stories.Perplexity(model);
    string folder = Path.Combine(outputFolder, method.ToLowerInvariant() + "-adapter");
    Lora.Save(model, folder);

    table.Add(method, baseWeights, $"{adapters.TrainableParameters:N0} ({100 * adapters.TrainableFraction:F2}%)",
        $"{curve[0].HeldOut:F4} → {curve[^1].HeldOut:F4}", $"{storiesBefore:F3} → {storiesAfter:F3}", $"{seconds:F1} s");
    Console.Error.WriteLine($"{method}: held-out " + string.Join(", ", curve.Where(p => p.HeldOut is not null).Select(p => $"{p.Step}: {p.HeldOut:F4}")));
    Console.Error.WriteLine($"{method}: adapter saved to {folder}");
    TrainingLoop.PlotCurve(plot, curve, method);
}

Console.WriteLine($"TinyStories-656K fine-tuned on tinyshakespeare: {steps} steps of {Batch} windows of BOS + 255 tokens, AdamW lr 2e-3, " +
                  $"LoRA r = {lora.Rank}, α = {lora.Alpha} on the 7 linear layers of both blocks; loss in nats per token");
Console.WriteLine();
Console.WriteLine(table);
Console.WriteLine($"adapters: {outputFolder}/{{lora,qlora}}-adapter (adapter_model.safetensors + adapter_config.json)");
plot.Title("TinyStories-656K → Shakespeare: LoRA and QLoRA");
plot.XLabel("step");
plot.YLabel("cross-entropy, nats per token");
plot.ShowLegend(Alignment.UpperRight);
Console.WriteLine($"plot: {SamplePlots.Save(plot, plots, "lora-loss")} (and .svg)");
Console.WriteLine($"total {total.Elapsed.TotalSeconds:F0} s");
return 0;
