// Distils compressed and smaller students of the shakespeare-char models of ../shared/data from their dense teacher,
// on the training split (the calibration corpus), for a fixed budget of steps; then measures validation loss before
// and after with the protocol of ../shared/data/README.md and prints the Markdown table of docs/distillation.md (and
// writes it to the path given as the first argument).
//   dotnet run -c Release --project samples/DistillShakespeare [output.md|-] [steps] [batch] [windows] [scheme filter] [models]
// steps: optimizer steps per run (default 200); batch: windows of 256 characters per step (default 8); windows:
// validation windows of 256 to score (default: all 435); the filter keeps the schemes whose name contains it, or any
// of its '|'-separated parts; models: "llama", "gpt2" or "both" (default llama).

using System.Diagnostics;
using System.Globalization;
using System.Text;
using Compression;
using Compression.Distillation;
using Compression.Pruning;
using Compression.Quantization;
using Compression.Samples;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Distillation;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string? outputPath = args.Length > 0 && args[0] != "-" ? args[0] : null;
int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200;
int batch = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 8;
int windows = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : int.MaxValue;
string filter = args.Length > 4 ? args[4] : "";
string models = args.Length > 5 ? args[5] : "llama";

// The shakespeare-char protocol (samples/Shared/ShakespeareData.cs): 90% / 10% split, 32 calibration windows of 256
// characters spread evenly over the training split (the same as docs/results.md).
ShakespeareData corpus = ShakespeareData.Load(windows);
int[] train = corpus.Train, validation = corpus.Validation;
int[][] calibration = corpus.Calibration;
RtnOptions int2 = RtnOptions.W4Group128 with { Format = NumberFormat.Int2 };
QuantizerOptions gptqInt2 = QuantizerOptions.W4A16 with { Quantization = int2, Method = QuantizationMethod.Gptq };
var kl = new DistillationObjective();                                      // forward KL on the logits, T = 1
var labelsOnly = new DistillationObjective { LogitWeight = 0, LabelWeight = 1 };
var klAndLabels = new DistillationObjective { LogitWeight = 1, LabelWeight = 1 };
var recovery = new DistillerOptions { Objective = kl, Steps = steps, LearningRate = 1e-4, Seed = 1 };
LearningRateSchedule cosine = new() { Decay = LearningRateDecay.Cosine, WarmupSteps = Math.Max(1, steps / 20), MinimumRatio = 0.1 };

var schemes = new Scheme[]
{
    new("GPTQ INT2 g128, scales distilled", m => { Quantizer.Pack(m, Quantizer.Apply(m, gptqInt2, calibration)); return m; },
        recovery with { Trainable = TrainableParts.QuantizationScales, LearningRate = 5e-4, Schedule = cosine }),
    new("GPTQ INT2 g128, LoRA r16 distilled (QLoRA)", m =>
        {
            Quantizer.Pack(m, Quantizer.Apply(m, gptqInt2, calibration));
            Lora.Apply(m, new LoraOptions { Rank = 16, Alpha = 16 });
            return m;
        },
        recovery with { Trainable = TrainableParts.Adapters, LearningRate = 1e-3, Schedule = cosine }),
    new("50% magnitude, unpruned weights distilled", m => { Pruner.Apply(m, new PrunerOptions(new MagnitudePruningOptions { Sparsity = 0.5 }.CreateCompressor())); return m; },
        recovery with { Trainable = TrainableParts.UnprunedWeights, LearningRate = 1e-4, Schedule = cosine }),
    new("3 of 6 layers (0, 2, 4), labels only", StudentModels.EveryOtherLayer,
        recovery with { Objective = labelsOnly, Trainable = TrainableParts.All, LearningRate = 3e-4, Schedule = cosine }, FromTeacher: true),
    new("3 of 6 layers (0, 2, 4), distilled (KL + labels)", StudentModels.EveryOtherLayer,
        recovery with { Objective = klAndLabels, Trainable = TrainableParts.All, LearningRate = 3e-4, Schedule = cosine }, FromTeacher: true),
};

var table = new StringBuilder();
table.AppendLine("| model | student | trained values | loss before | loss after | Δ by distillation | dense teacher | time (compress / distil) |");
table.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
foreach (string model in new[] { "llama-shakespeare-char", "gpt2-shakespeare-char" }.Where(m => models == "both" || m.StartsWith(models, StringComparison.Ordinal)))
{
    using CausalLanguageModel teacher = HuggingFaceModels.Load(DataFolder.File(model));
    double dense = LanguageModelEvaluator.Evaluate(teacher, validation, window: 256, batchSize: 32).Loss;
    Console.Error.WriteLine($"{model}: dense loss {dense:F4}");
    foreach (Scheme scheme in schemes.Where(s => filter.Length == 0 || filter.Split('|').Any(f => s.Name.Contains(f, StringComparison.Ordinal))))
    {
        var clock = Stopwatch.StartNew();
        CausalLanguageModel student = scheme.FromTeacher ? scheme.Build(teacher) : scheme.Build(HuggingFaceModels.Load(DataFolder.File(model)));
        double compressSeconds = clock.Elapsed.TotalSeconds;
        double before = LanguageModelEvaluator.Evaluate(student, validation, window: 256, batchSize: 32).Loss;
        Console.Error.WriteLine($"  {scheme.Name}: before {before:F4} ({compressSeconds:F1} s)");
        clock.Restart();
        var progress = new Progress<DistillationProgress>(p =>
        {
            if (p.Step % 25 == 0 || p.Step == p.Steps)
            {
                Console.Error.WriteLine($"    step {p.Step}/{p.Steps}: loss {p.Result.Loss:F4} ({p.Elapsed.TotalSeconds:F0} s)");
            }
        });
        DistillationReport report = Distiller.Train(teacher, student, DistillationData.RandomWindows(train, 257, batch, seed: 1), scheme.Options, progress);
        double distilSeconds = clock.Elapsed.TotalSeconds;
        double after = LanguageModelEvaluator.Evaluate(student, validation, window: 256, batchSize: 32).Loss;
        Console.Error.WriteLine($"  {scheme.Name}: after {after:F4} ({distilSeconds:F1} s)");
        table.AppendLine($"| {model} | {scheme.Name} | {report.TrainableParameters:N0} | {before:F4} | {after:F4} | {Numbers.Signed(after - before, "F4")} | {dense:F4} | {compressSeconds:F0} s / {distilSeconds:F0} s |");
        student.Dispose();
    }

    // Layer-wise reconstruction: no training, each layer's scales refitted to its inputs (only the Hessians of 32 windows).
    RtnOptions rtnInt2 = int2;
    var refits = new (string Name, QuantizerOptions Plain, ICompressor Inner)[]
    {
        ("RTN INT2 g128, layer-wise reconstruction of the scales", new QuantizerOptions { Quantization = rtnInt2 }, new RoundToNearestQuantizer(rtnInt2)),
        ("GPTQ INT2 g128, layer-wise reconstruction of the scales", gptqInt2, new GptqOptions { Quantization = rtnInt2 }.CreateCompressor()),
    };
    foreach ((string name, QuantizerOptions plain, ICompressor inner) in refits.Where(r => filter.Length == 0 || filter.Split('|').Any(f => r.Name.Contains(f, StringComparison.Ordinal))))
    {
        var clock = Stopwatch.StartNew();
        double before;
        using (CausalLanguageModel quantized = HuggingFaceModels.Load(DataFolder.File(model)))
        {
            Quantizer.Apply(quantized, plain, calibration);
            before = LanguageModelEvaluator.Evaluate(quantized, validation, window: 256, batchSize: 32).Loss;
        }

        double compressSeconds = clock.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"  {name}: before {before:F4} ({compressSeconds:F1} s)");
        using CausalLanguageModel refitted = HuggingFaceModels.Load(DataFolder.File(model));
        clock.Restart();
        ReconstructionReport report = Reconstructor.Apply(refitted, new ReconstructorOptions(inner), calibration);
        double refitSeconds = clock.Elapsed.TotalSeconds;
        double after = LanguageModelEvaluator.Evaluate(refitted, validation, window: 256, batchSize: 32).Loss;
        Console.Error.WriteLine($"  {name}: after {after:F4} ({refitSeconds:F1} s)");
        table.AppendLine($"| {model} | {name} | {report.Layers.Sum(l => (long)l.Fit.ParameterCount):N0} (no training) | {before:F4} | {after:F4} | {Numbers.Signed(after - before, "F4")} | {dense:F4} | {compressSeconds:F0} s / {refitSeconds:F0} s (compress + fit) |");
    }
}

Console.WriteLine(table);
Console.WriteLine($"{steps} steps of {batch} windows of 256 characters drawn from the training split (seed 1); validation loss over {(windows == int.MaxValue ? 435 : windows)} windows.");
if (outputPath is not null)
{
    File.WriteAllText(outputPath, table.ToString());
}


/// <summary>A student: how to build it from a fresh copy of the model (or from the teacher) and how to distil it.</summary>
internal sealed record Scheme(string Name, Func<CausalLanguageModel, CausalLanguageModel> Build, DistillerOptions Options, bool FromTeacher = false);
