using Compression.Quantization;
using Compression.Testing;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Distillation;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Distillation;

/// <summary>
/// The <see cref="Distiller"/> loop on TinyStories-656K (teacher FP32, student a fake-quantized INT3 copy whose dense
/// weights train): exact resume, the frozen teacher, schedule, evaluation and progress, cancellation and bad input.
/// Runs are a few steps of 2 × 32 tokens so each test takes seconds.
/// </summary>
[Collection("TorchSharp")]
public class DistillerTests(ITestOutputHelper output)
{
    private static IEnumerable<Tensor> Batches(int seed = 3) =>
        DistillationData.RandomWindows(TinyStoriesCorpus.Train, window: 33, batchSize: 2, seed: seed, bos: TinyStoriesCorpus.Bos);

    /// <summary>The teacher with its linear weights fake-quantized to INT3 g32: dense, so every part can train.</summary>
    private static CausalLanguageModel Int3Student()
    {
        CausalLanguageModel student = TinyStoriesCorpus.Load();
        Quantizer.Apply(student, new QuantizerOptions { Quantization = new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(32) } });
        return student;
    }

    public static TheoryData<string> ResumeCases() => ["int3-dense-weights", "packed-int4-scales", "lora-with-dropout", "narrow-student-hidden-states"];

    /// <summary>A student for <see cref="Train_ResumedAfterCancellation_GivesTheUninterruptedLossCurveAndWeightsExactly"/>
    /// and what trains in it: dense weights and norms; packed scales; LoRA adapters whose dropout draws random numbers;
    /// a half-width randomly initialised student matching hidden states through the objective's learned projections.</summary>
    private static (CausalLanguageModel Student, DistillerOptions Options) ResumeCase(string kind, string directory)
    {
        var options = new DistillerOptions
        {
            Steps = 6,
            LearningRate = 1e-3,
            WeightDecay = 0.01,
            MaxGradientNorm = 0.5,
            GradientAccumulationSteps = 2,
            Schedule = new LearningRateSchedule { Decay = LearningRateDecay.Cosine, WarmupSteps = 2, MinimumRatio = 0.1 },
            Trainable = TrainableParts.UnprunedWeights | TrainableParts.Norms,
            Objective = new DistillationObjective { Temperature = 2, LabelWeight = 0.5 },
            CheckpointDirectory = directory,
            CheckpointEvery = 3,
            Seed = 11,
        };
        switch (kind)
        {
            case "packed-int4-scales":
            {
                CausalLanguageModel student = TinyStoriesCorpus.Load();
                Quantizer.Pack(student, Quantizer.Apply(student, new QuantizerOptions { Quantization = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32) } }));
                return (student, options with { Trainable = TrainableParts.QuantizationScales });
            }

            case "lora-with-dropout":
            {
                CausalLanguageModel student = Int3Student();
                Lora.Apply(student, new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.2, Seed = 2 });
                return (student, options with { Trainable = null });
            }

            case "narrow-student-hidden-states":
            {
                string config = File.ReadAllText(SharedData.File("tinystories-656k", "config.json"))
                    .Replace("\"hidden_size\": 128", "\"hidden_size\": 64", StringComparison.Ordinal)
                    .Replace("\"intermediate_size\": 384", "\"intermediate_size\": 192", StringComparison.Ordinal);
                torch.random.manual_seed(21);
                CausalLanguageModel student = HuggingFaceModels.CreateFromConfig(config);
                return (student, options with { Trainable = TrainableParts.All, Objective = options.Objective with { HiddenWeight = 1 } });
            }

            default:
                return (Int3Student(), options);
        }
    }

    private static Dictionary<string, float[]> Snapshot(CausalLanguageModel model) =>
        model.named_parameters().DistinctBy(p => p.name).ToDictionary(p => p.name, p =>
        {
            using Tensor cpu = p.parameter.detach().cpu().contiguous();
            return cpu.data<float>().ToArray();
        });

    [Theory]
    [MemberData(nameof(ResumeCases))]
    public void Train_ResumedAfterCancellation_GivesTheUninterruptedLossCurveAndWeightsExactly(string kind)
    {
        using TemporaryDirectory folders = RandomData.CreateTemporaryDirectory();
        using CausalLanguageModel teacher = TinyStoriesCorpus.Load();

        (CausalLanguageModel whole, DistillerOptions wholeOptions) = ResumeCase(kind, folders.File("whole"));
        using var wholeScope = whole;
        DistillationReport uninterrupted = Distiller.Train(teacher, whole, Batches(), wholeOptions);

        // Interrupted after step 3 (the checkpoint of step 3 is written before that step's progress report) …
        using var cancel = new CancellationTokenSource();
        (CausalLanguageModel interrupted, DistillerOptions splitOptions) = ResumeCase(kind, folders.File("split"));
        using (interrupted)
        {
            var recorder = new DistillationRecorder(p =>
            {
                if (p.Step == 3)
                {
                    cancel.Cancel();
                }
            });
            Assert.ThrowsAny<OperationCanceledException>(() => Distiller.Train(teacher, interrupted, Batches(), splitOptions, recorder, cancel.Token));
            Assert.Equal([1, 2, 3], recorder.Seen.Select(p => p.Step));
        }

        // … then a fresh student resumes from that checkpoint to step 6.
        (CausalLanguageModel resumedStudent, _) = ResumeCase(kind, folders.File("split"));
        using var resumedScope = resumedStudent;
        DistillationReport resumed = Distiller.Train(teacher, resumedStudent, Batches(), splitOptions);

        Assert.Equal(3, resumed.ResumedFromStep);
        Assert.Equal(0, uninterrupted.ResumedFromStep);
        Assert.Equal(6, uninterrupted.History.Count);
        foreach (DistillationStepResult step in uninterrupted.History)
        {
            output.WriteLine($"{kind} step {step.Step}: lr {step.LearningRate:G6} loss {step.Loss:R} (KL {step.Logit:F5}, CE {step.Label:F5}, hidden {step.Hidden:F5}) |g| {step.GradientNorm:F4}");
        }

        // Exact equality: on the CPU the same operations on the same values give the same bits, and a resumed run
        // restores every trained tensor (scales, adapters, projections), AdamW's moments and step counts, reseeds the
        // generator dropout draws from, and skips the 6 batches it consumed.
        Assert.Equal(uninterrupted.History, resumed.History);
        Dictionary<string, float[]> expected = Snapshot(whole), actual = Snapshot(resumedStudent);
        foreach ((string name, float[] values) in expected)
        {
            Assert.True(values.AsSpan().SequenceEqual(actual[name]), $"{name} differs after resuming");
        }

        var scales = whole.modules().OfType<QuantizedLinear>().Distinct().Select(l => ((QuantizedTensor)l.Weight).Scales.ToArray()).ToArray();
        Assert.Equal(scales, resumedStudent.modules().OfType<QuantizedLinear>().Distinct().Select(l => ((QuantizedTensor)l.Weight).Scales.ToArray()));
        Assert.Equal(kind == "packed-int4-scales" ? 14 : 0, scales.Length);
        Assert.Single(Directory.GetFiles(folders.File("split")), f => f.EndsWith("checkpoint-00000006.safetensors", StringComparison.Ordinal));
    }

    [Fact]
    public void Train_AccumulatedHalfBatches_EqualOneStepOnTheirConcatenation()
    {
        using CausalLanguageModel teacher = TinyStoriesCorpus.Load();
        Tensor[] halves = Batches(seed: 8).Take(4).ToArray();
        Tensor[] whole = [torch.cat([halves[0], halves[1]]), torch.cat([halves[2], halves[3]])];
        // Plain SGD: its step is linear in the gradient, so equal gradients give equal weights.
        var options = new DistillerOptions
        {
            Steps = 2,
            LearningRate = 0.5,
            MaxGradientNorm = null,
            Trainable = TrainableParts.Norms,
            Optimizer = parameters => torch.optim.SGD(parameters.Select(p => p.Parameter), 0.5),
        };
        using CausalLanguageModel accumulated = Int3Student(), concatenated = Int3Student();
        DistillationReport a = Distiller.Train(teacher, accumulated, halves, options with { GradientAccumulationSteps = 2 });
        DistillationReport b = Distiller.Train(teacher, concatenated, whole, options);

        // The mean over 2 × 32 positions of each half, averaged, is the mean over the 4 × 32 of their concatenation;
        // only the order of float32 sums differs (relative 1e-6 on losses, 1e-6 absolute on norms of size ~1).
        for (int t = 0; t < 2; t++)
        {
            Assert.Equal(b.History[t].Loss, a.History[t].Loss, b.History[t].Loss * 1e-6);
            Assert.Equal(b.History[t].GradientNorm, a.History[t].GradientNorm, b.History[t].GradientNorm * 1e-5);
        }

        Dictionary<string, float[]> x = Snapshot(accumulated), y = Snapshot(concatenated);
        foreach ((string name, float[] values) in x)
        {
            for (int i = 0; i < values.Length; i++)
            {
                Assert.Equal(y[name][i], values[i], 1e-6f);
            }
        }

        Assert.False(Snapshot(teacher)["model.norm.weight"].AsSpan().SequenceEqual(x["model.norm.weight"]), "the norms did not train");
    }

    [Fact]
    public void LearningRateSchedule_FollowsWarmupThenDecayFormulas()
    {
        var cosine = new LearningRateSchedule { Decay = LearningRateDecay.Cosine, WarmupSteps = 4, MinimumRatio = 0.1 };
        var linear = cosine with { Decay = LearningRateDecay.Linear };
        for (int t = 0; t < 4; t++)
        {
            Assert.Equal((t + 1) / 4.0, cosine.Multiplier(t, 20));
            Assert.Equal((t + 1) / 4.0, linear.Multiplier(t, 20));
        }

        for (int t = 4; t < 20; t++)
        {
            double p = (t - 4) / 16.0;
            Assert.Equal(0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * p)), cosine.Multiplier(t, 20), 15);
            Assert.Equal(0.1 + 0.9 * (1 - p), linear.Multiplier(t, 20), 15);
        }

        Assert.Equal(1.0, LearningRateSchedule.Constant.Multiplier(7, 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => cosine.Multiplier(20, 20));
    }
}
