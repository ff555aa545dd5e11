// 2:4 sparsity on TinyStories-656K and its recovery: SparseGPT prunes two of every four consecutive weights of each
// linear layer (the pattern sparse tensor cores run at twice the speed), calibrated on stories after the evaluation
// text; then Distiller.Train teaches the pruned student from the original model (KL on the logits), training only
// the weights that survived: the masks are kept, so the result is still exactly 2:4. Perplexity with the protocol of
// ../shared/data/README.md before and after, a check of the 2:4 pattern, and the distillation loss curve.
//
//   dotnet run --project samples/PruneAndRecover -c Release [-- steps [batch]] [--plots out/plots]
// steps: distillation steps (default 150); batch: windows of BOS + 255 tokens per step (default 8).

using System.Diagnostics;
using System.Globalization;
using Compression;
using Compression.Pruning;
using Compression.Samples;
using Compression.TorchSharp.Distillation;
using Compression.TorchSharp.Models;
using ScottPlot;
using TorchSharp;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int steps = args.Length > 0 && int.TryParse(args[0], CultureInfo.InvariantCulture, out int s) ? s : 150;
int batch = args.Length > 1 && int.TryParse(args[1], CultureInfo.InvariantCulture, out int b) ? b : 8;
string plots = SamplePlots.Folder(args);
var total = Stopwatch.StartNew();

TinyStoriesData data = TinyStoriesData.Load();
int[][] calibration = data.CalibrationSequences(32);
// Training text for the recovery: the stories after the evaluation text (about 170,000 tokens), never scored.
int[] training = data.TrainingTokens(800_000);

using CausalLanguageModel teacher = TinyStoriesData.LoadModel();
using CausalLanguageModel student = TinyStoriesData.LoadModel();
double dense = data.Perplexity(teacher);

PruningModelReport pruned = ConsoleProgress.Run("SparseGPT 2:4",
    progress => Pruner.Apply(student, new PrunerOptions(new SparseGptPruner(SparseGptOptions.TwoFour)), calibration, progress));
double afterPruning = data.Perplexity(student);

var options = new DistillerOptions
{
    Steps = steps,
    LearningRate = 1e-3,
    Schedule = new LearningRateSchedule { Decay = LearningRateDecay.Cosine, WarmupSteps = 20, MinimumRatio = 0.1 },
    Trainable = TrainableParts.UnprunedWeights,
    Seed = 1,
    Evaluation = data.Perplexity,
    EvaluateEvery = Math.Max(1, steps / 6),
};
var clock = Stopwatch.StartNew();
DistillationReport distilled = ConsoleProgress.Run($"distillation, {steps} steps", progress => Distiller.Train(teacher, student,
    DistillationData.RandomWindows(training, window: TinyStoriesData.Window, batchSize: batch, seed: 1, bos: TinyStoriesData.Bos), options,
    ConsoleProgress.Map<DistillationProgress>(progress, p => new CompressionProgress("step", $"loss {p.Result.Loss:F4}", p.Step, p.Steps))));
double distillSeconds = clock.Elapsed.TotalSeconds;
double recovered = data.Perplexity(student);

// The masks were kept: every group of four consecutive weights along a row still holds at least two zeros.
long groups = 0, violations = 0;
foreach (LayerPruning layer in pruned.Layers)
{
    using var weight = student.get_parameter(layer.Name + ".weight")!.detach().cpu();
    float[] values = weight.data<float>().ToArray();
    for (int g = 0; g < values.Length / 4; g++)
    {
        groups++;
        int zeros = values.AsSpan(4 * g, 4).Count(0f);
        violations += zeros < 2 ? 1 : 0;
    }
}

var table = new MarkdownTable("model", "perplexity", "Δ perplexity", "sparsity of the linear layers", "time");
double linearSparsity = pruned.Layers.Sum(l => l.Sparsity * l.Rows * l.Columns) / pruned.Layers.Sum(l => (double)l.Rows * l.Columns);
table.Add("dense FP32 (teacher)", dense.ToString("F3"), "", "0%", "");
table.Add("SparseGPT 2:4", afterPruning.ToString("F3"), Numbers.Signed(afterPruning - dense, "F3"), $"{100 * linearSparsity:F1}%", $"{pruned.Elapsed.TotalSeconds:F1} s");
table.Add($"2:4 + distillation ({steps} steps)", recovered.ToString("F3"), Numbers.Signed(recovered - dense, "F3"), $"{100 * linearSparsity:F1}%", $"{distillSeconds:F1} s");
Console.WriteLine($"TinyStories-656K, 2:4 SparseGPT on the {pruned.Layers.Count} linear layers (32 calibration windows), recovered by distillation " +
                  $"from the dense model (KL on the logits, {distilled.TrainableParameters:N0} unpruned weights trained, batches of {batch} × 256 tokens)");
Console.WriteLine();
Console.WriteLine(table);
Console.WriteLine($"recovered {100 * (afterPruning - recovered) / (afterPruning - dense):F0}% of the perplexity lost to pruning; " +
                  $"2:4 pattern after training: {groups - violations:N0} of {groups:N0} groups of four hold at least two zeros");
Console.WriteLine("held-out perplexity during distillation: " + string.Join(", ", distilled.Evaluations.Select(e => $"step {e.Step}: {e.Value:F3}")));

var plot = new Plot();
SamplePlots.Line(plot, distilled.History.Select(h => (double)h.Step).ToArray(), distilled.History.Select(h => h.Loss).ToArray(), "distillation loss (KL, per step)");
plot.Title("TinyStories-656K 2:4: recovery by distillation");
plot.XLabel("step");
plot.YLabel("KL(teacher ‖ student), nats per token");
plot.ShowLegend(Alignment.UpperRight);
Console.WriteLine($"plot: {SamplePlots.Save(plot, plots, "prune-and-recover-loss")} (and .svg)");
Console.WriteLine($"total {total.Elapsed.TotalSeconds:F0} s");
return 0;
