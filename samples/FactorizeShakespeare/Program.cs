// Factorises the linear layers of the two shakespeare-char models of ../shared/data by truncated SVD, activation-aware
// SVD (SVD-LLM) and WeLore's global rank budget, and compensates GPTQ INT2 with EoRA; then measures their validation
// loss with the protocol of ../shared/data/README.md; prints the Markdown table of docs/lowrank.md (and writes it to
// the path given as the first argument).
//   dotnet run -c Release --project samples/FactorizeShakespeare [output.md|-] [windows] [scheme filter]
// windows: validation windows of 256 to score (default: all 435); the filter keeps the schemes whose name contains it,
// or any of its '|'-separated parts (the dense baseline always runs).

using System.Diagnostics;
using System.Globalization;
using System.Text;
using Compression;
using Compression.LowRank;
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
var svd = new LowRankOptions();
var svdLlm = new LowRankOptions { Whitening = ActivationWhitening.Cholesky };
RtnOptions int2 = RtnOptions.W4Group128 with { Format = NumberFormat.Int2 };
ICompressor gptqInt2 = new GptqOptions { Quantization = int2 }.CreateCompressor();
const string Int2Alone = "GPTQ INT2 g128 alone";
var schemes = new (string Name, FactorizerOptions? Options)[]
{
    ("dense (BF16 as stored)", null),
    (Int2Alone, null),
    ("SVD, 80% of the parameters", new FactorizerOptions { LowRank = svd with { Rank = RankRule.ParameterRatio(0.8) } }),
    ("SVD-LLM, 80%", new FactorizerOptions { LowRank = svdLlm with { Rank = RankRule.ParameterRatio(0.8) } }),
    ("SVD, 60%", new FactorizerOptions { LowRank = svd with { Rank = RankRule.ParameterRatio(0.6) } }),
    ("SVD-LLM, 60%", new FactorizerOptions { LowRank = svdLlm with { Rank = RankRule.ParameterRatio(0.6) } }),
    ("WeLore ranks, 60%", new FactorizerOptions { LowRank = svd, GlobalParameterRatio = 0.6 }),
    ("WeLore ranks + SVD-LLM, 60%", new FactorizerOptions { LowRank = svdLlm, GlobalParameterRatio = 0.6 }),
    ("GPTQ INT2 g128 + SVD of the error, rank 32", new FactorizerOptions { Base = gptqInt2, LowRank = svd with { Rank = RankRule.Fixed(32) }, ReplaceModules = false }),
    ("GPTQ INT2 g128 + EoRA, rank 8", new FactorizerOptions
    {
        Base = gptqInt2, LowRank = svd with { Rank = RankRule.Fixed(8), Whitening = ActivationWhitening.Eigen }, ReplaceModules = false,
    }),
    ("GPTQ INT2 g128 + EoRA, rank 32", new FactorizerOptions
    {
        Base = gptqInt2, LowRank = svd with { Rank = RankRule.Fixed(32), Whitening = ActivationWhitening.Eigen }, ReplaceModules = false,
    }),
};

var table = new StringBuilder();
table.AppendLine("| scheme | GPT-2 loss | GPT-2 ppl | Δ loss | Llama loss | Llama ppl | Δ loss | weights of the factorised layers | time, GPT-2 / Llama |");
table.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
var baseline = new Dictionary<string, double>();
foreach ((string name, FactorizerOptions? options) in schemes.Where(s => s.Name.StartsWith("dense", StringComparison.Ordinal)
    || filter.Split('|').Any(f => s.Name.Contains(f, StringComparison.Ordinal))))
{
    var cells = new List<string> { name };
    string share = "", times = "";
    foreach (string model in new[] { "gpt2-shakespeare-char", "llama-shakespeare-char" })
    {
        using CausalLanguageModel lm = HuggingFaceModels.Load(DataFolder.File(model));
        double seconds = 0;
        bool dense = options is null && name != Int2Alone;
        if (name == Int2Alone)
        {
            var clock = Stopwatch.StartNew();
            Quantizer.Apply(lm, QuantizerOptions.W4A16 with { Quantization = int2, Method = QuantizationMethod.Gptq }, calibration);
            seconds = clock.Elapsed.TotalSeconds;
            share = "+0 (INT2 codes only)";
        }
        else if (options is not null)
        {
            var clock = Stopwatch.StartNew();
            FactorizationReport report = Factorizer.Apply(lm, options, calibration);
            seconds = clock.Elapsed.TotalSeconds;
            long weights = report.Layers.Sum(l => (long)l.Rows * l.Columns);
            // With a base quantizer the low-rank part comes on top of the INT2 codes: its share is what it adds.
            share = options.Base is null
                ? ((double)report.Layers.Sum(l => l.Parameters) / weights).ToString("P1")
                : "+" + ((double)report.Layers.Sum(l => l.Parameters) / weights).ToString("P1") + " (factors)";
        }

        LanguageModelScore score = LanguageModelEvaluator.Evaluate(lm, validation, window: 256, batchSize: 32);
        if (dense)
        {
            baseline[model] = score.Loss;
        }

        double delta = score.Loss - baseline[model];
        cells.Add(score.Loss.ToString("F4"));
        cells.Add(score.Perplexity.ToString("F3"));
        cells.Add(dense ? "" : $"{Numbers.Signed(delta, "F4")} ({Numbers.Signed(100 * delta / baseline[model], "F2")}%)");
        times += (times.Length > 0 ? " / " : "") + (dense ? "" : $"{seconds:F1} s");
        Console.Error.WriteLine($"{name}, {model}: loss {score.Loss:F4} ({seconds:F1} s)");
    }

    cells.Add(options is null && name != Int2Alone ? "100%" : share);
    cells.Add(times.Trim(' ', '/'));
    table.AppendLine("| " + string.Join(" | ", cells) + " |");
}

Console.WriteLine(table);
if (outputPath is not null)
{
    File.WriteAllText(outputPath, table.ToString());
}

