// Prunes the two shakespeare-char models of ../shared/data with magnitude, Wanda and SparseGPT at 50% unstructured
// and 2:4 (and SparseGPT 2:4 followed by GPTQ INT4 on the survivors), then measures their validation loss with the
// protocol of ../shared/data/README.md; prints the Markdown table of docs/pruning.md (and writes it to the path given
// as the first argument).
//   dotnet run -c Release --project samples/PruneShakespeare [output.md|-] [windows] [scheme filter]
// windows: validation windows of 256 to score (default: all 435); the filter keeps the schemes whose name contains it,
// or any of its '|'-separated parts (the dense baseline always runs).

using System.Diagnostics;
using System.Globalization;
using System.Text;
using Compression;
using Compression.Pruning;
using Compression.Quantization;
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
var schemes = new (string Name, PrunerOptions? Options)[]
{
    ("dense (BF16 as stored)", null),
    ("50%, magnitude (per layer)", new PrunerOptions(new MagnitudePruningOptions { Sparsity = 0.5 }.CreateCompressor())),
    ("50%, Wanda (per row)", new PrunerOptions(new WandaOptions { Sparsity = 0.5 }.CreateCompressor())),
    ("50%, SparseGPT", new PrunerOptions(SparseGptOptions.Unstructured50.CreateCompressor())),
    ("2:4, magnitude", new PrunerOptions(NofMOptions.TwoOfFour.CreateCompressor())),
    ("2:4, Wanda", new PrunerOptions(new WandaOptions { NofM = NofMOptions.TwoOfFour }.CreateCompressor())),
    ("2:4, SparseGPT", new PrunerOptions(SparseGptOptions.TwoFour.CreateCompressor())),
    ("2:4, SparseGPT + GPTQ INT4 g128", new PrunerOptions(SparseGptOptions.TwoFour.CreateCompressor())
    {
        ThenQuantize = QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq },
    }),
};

var table = new StringBuilder();
table.AppendLine("| scheme | GPT-2 loss | GPT-2 ppl | Δ loss | Llama loss | Llama ppl | Δ loss | sparsity of the pruned layers | time, GPT-2 / Llama |");
table.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
var baseline = new Dictionary<string, double>();
foreach ((string name, PrunerOptions? options) in schemes.Where(s => s.Options is null || filter.Split('|').Any(f => s.Name.Contains(f, StringComparison.Ordinal))))
{
    var cells = new List<string> { name };
    string sparsity = "", times = "";
    foreach (string model in new[] { "gpt2-shakespeare-char", "llama-shakespeare-char" })
    {
        using CausalLanguageModel lm = HuggingFaceModels.Load(DataFolder.File(model));
        double seconds = 0;
        if (options is not null)
        {
            var clock = Stopwatch.StartNew();
            PruningModelReport report = Pruner.Apply(lm, options, calibration);
            seconds = clock.Elapsed.TotalSeconds;
            long weights = report.Layers.Sum(l => (long)l.Rows * l.Columns);
            sparsity = (report.Layers.Sum(l => l.Sparsity * l.Rows * l.Columns) / weights).ToString("P1");
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

    cells.Add(options is null ? "0" : sparsity);
    cells.Add(times.Trim(' ', '/'));
    table.AppendLine("| " + string.Join(" | ", cells) + " |");
}

Console.WriteLine(table);
if (outputPath is not null)
{
    File.WriteAllText(outputPath, table.ToString());
}

