// Pre-trains a small Llama (TinyStories-656K's architecture: hidden 128, 2 blocks, SwiGLU 384, vocabulary 2048)
// from random weights on TinyStories text, once with torch's AdamW and once with GaLoreAdamW (rank 32 gradient
// projection of the blocks' matrices), and compares the optimizer state each holds, measured from the tensors the
// optimizers keep, against the paper's formula, with the loss curves. Training text: the stories after the first
// 20,000 characters of tinystories/val-sample.txt; held-out: the protocol's 8 windows (those 20,000 characters).
//
//   dotnet run --project samples/GaLorePretrain -c Release [-- steps] [--plots out/plots]

using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Compression.Samples;
using Compression.TorchSharp.Models;
using Compression.TorchSharp.Optimizers;
using ScottPlot;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int steps = args.Length > 0 && int.TryParse(args[0], CultureInfo.InvariantCulture, out int s) ? s : 100;
string plots = SamplePlots.Folder(args);
var total = Stopwatch.StartNew();

TinyStoriesData stories = TinyStoriesData.Load();
int[] train = stories.TrainingTokens(800_000);
int[] heldOut = stories.EvaluationTokens[..(TinyStoriesData.EvaluationWindows * (TinyStoriesData.Window - 1))];
const int Batch = 8, Rank = 32;

var table = new MarkdownTable("optimizer", "state bytes, measured", "state bytes, formula", "vs AdamW", "held-out loss at start → end", "time");
var plot = new Plot();
long adamWBytes = 0;
string projectedLine = "";
foreach (string name in new[] { "AdamW", "GaLoreAdamW" })
{
    using CausalLanguageModel model = TinyStoriesData.LoadModel();
    Reinitialize(model, seed: 1);
    OptimizerHelper optimizer = name == "AdamW"
        ? torch.optim.AdamW(model.parameters(), lr: 2e-3, weight_decay: 0.01)
        : new GaLoreAdamW(model.named_parameters(), new GaLoreOptions
        {
            Rank = Rank, UpdateProjectionGap = 50, Scale = 0.25, LearningRate = 1e-2, WeightDecay = 0.01,
            // As in the paper: the blocks' matrices are projected, the embedding (and the tied head) and norms are not.
            ProjectParameter = (parameter, p) => parameter.Contains(".layers.", StringComparison.Ordinal) && p.dim() == 2,
        });
    var clock = Stopwatch.StartNew();
    List<LossPoint> curve = ConsoleProgress.Run($"{name}, {steps} steps", progress =>
        TrainingLoop.Run(model, optimizer, train, heldOut, steps, Batch, TinyStoriesData.Window, TinyStoriesData.Bos, evaluateEvery: 20, progress));
    double seconds = clock.Elapsed.TotalSeconds;

    // Measured: every tensor the optimizer's state holds (moments, projections), element size × count.
    long measured = StateBytes(optimizer);
    string formula;
    if (optimizer is GaLoreAdamW galore)
    {
        GaLoreMemoryReport report = galore.MemoryReport();
        if (report.StateBytes != measured)
        {
            Console.Error.WriteLine($"note: GaLore's own report counts {report.StateBytes:N0} bytes, the state tensors {measured:N0}");
        }

        formula = Numbers.Bytes(report.FormulaBytes);
        GaLoreMemoryRow[] projected = report.Parameters.Where(p => p.Rank is not null).ToArray();
        projectedLine = $"the {projected.Length} projected matrices alone: {Numbers.Bytes(projected.Sum(p => p.StateBytes))} bytes of GaLore state " +
                        $"against {Numbers.Bytes(projected.Sum(p => p.AdamWBytes))} for AdamW ({(double)projected.Sum(p => p.StateBytes) / projected.Sum(p => p.AdamWBytes):P1}); " +
                        "the embedding (tied with the head) is not projected and keeps AdamW's two moments in both runs";
    }
    else
    {
        // AdamW: two moments of every parameter, float32.
        formula = Numbers.Bytes(2L * 4 * model.parameters().DistinctBy(p => p.Handle).Sum(p => p.numel()));
        adamWBytes = measured;
    }

    table.Add(name, Numbers.Bytes(measured), formula, $"{(double)measured / adamWBytes:P1}", $"{curve[0].HeldOut:F3} → {curve[^1].HeldOut:F3}", $"{seconds:F1} s");
    TrainingLoop.PlotCurve(plot, curve, name);
    optimizer.Dispose();
}

Console.WriteLine($"Pre-training TinyStories-656K's architecture from random weights: {steps} steps of {Batch} windows of BOS + 255 tokens; " +
                  $"AdamW lr 2e-3; GaLoreAdamW rank {Rank}, projection refreshed every 50 steps, scale 0.25, lr 1e-2; loss in nats per token");
Console.WriteLine();
Console.WriteLine(table);
Console.WriteLine(projectedLine);
plot.Title("Pre-training from scratch: AdamW vs GaLoreAdamW");
plot.XLabel("step");
plot.YLabel("cross-entropy, nats per token");
plot.ShowLegend(Alignment.UpperRight);
Console.WriteLine($"plot: {SamplePlots.Save(plot, plots, "galore-loss")} (and .svg)");
Console.WriteLine($"total {total.Elapsed.TotalSeconds:F0} s");
return 0;

// Random weights: N(0, 0.02²) for matrices and the embedding (GPT-2's initialisation), ones for the norms.
static void Reinitialize(CausalLanguageModel model, int seed)
{
    using var noGrad = torch.no_grad();
    var generator = new Generator((ulong)seed);
    foreach (Parameter p in model.parameters().DistinctBy(p => p.Handle))
    {
        if (p.dim() >= 2)
        {
            p.normal_(0, 0.02, generator);
        }
        else
        {
            p.fill_(1);
        }
    }
}

// Sums element size × count over the tensors held by the optimizer's per-parameter state objects, found by
// reflection (torch's AdamW keeps exp_avg and exp_avg_sq; GaLoreAdamW its moments and, inside its projector, the
// projection matrix or its INT4 codes and scales), each tensor once.
static long StateBytes(OptimizerHelper optimizer)
{
    var tensors = new HashSet<IntPtr>();
    var visited = new HashSet<object>(ReferenceEqualityComparer.Instance);
    long bytes = 0;
    foreach (object state in optimizer.state_dict().State)
    {
        Visit(state);
    }

    return bytes;

    void Visit(object? value)
    {
        switch (value)
        {
            case null:
                return;
            case Tensor tensor:
                if (!tensor.IsInvalid && tensors.Add(tensor.Handle))
                {
                    bytes += tensor.numel() * tensor.ElementSize;
                }

                return;
            case System.Collections.IEnumerable items and not string:
                foreach (object? item in items)
                {
                    Visit(item);
                }

                return;
        }

        // Only the optimizers' own state types are walked (not parameters, options or delegates they refer to).
        Type type = value.GetType();
        if (type.IsPrimitive || type.IsEnum || value is Parameter || !visited.Add(value)
            || !(type.Namespace?.StartsWith("Compression", StringComparison.Ordinal) == true || type.Namespace?.StartsWith("TorchSharp.Modules", StringComparison.Ordinal) == true))
        {
            return;
        }

        foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            if (!field.FieldType.IsPrimitive && field.FieldType != typeof(Parameter) && !typeof(Delegate).IsAssignableFrom(field.FieldType))
            {
                Visit(field.GetValue(value));
            }
        }
    }
}
