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
    public void Train_Teacher_IsUnchangedBitForBit_AndKeepsItsModeAndFlags()
    {
        using CausalLanguageModel teacher = TinyStoriesCorpus.Load();
        using CausalLanguageModel student = Int3Student();
        teacher.train();
        Dictionary<string, float[]> before = Snapshot(teacher);
        var flags = teacher.named_parameters().Select(p => p.parameter.requires_grad).ToArray();
        var studentFlags = student.named_parameters().Select(p => p.parameter.requires_grad).ToArray();
        student.eval();

        var seenModes = new List<(bool Teacher, bool Student)>();
        var options = new DistillerOptions
        {
            Steps = 2,
            LearningRate = 1e-3,
            Trainable = TrainableParts.All,
            Objective = new DistillationObjective { HiddenWeight = 1, AttentionWeight = 1 },
        };
        Distiller.Train(teacher, student, Batches(), options, new DistillationRecorder(_ => seenModes.Add((teacher.training, student.training))));

        Assert.All(seenModes, m => Assert.Equal((false, true), m));
        Dictionary<string, float[]> after = Snapshot(teacher);
        foreach ((string name, float[] values) in before)
        {
            Assert.True(values.AsSpan().SequenceEqual(after[name]), $"teacher's {name} changed");
        }

        Assert.True(teacher.training);
        Assert.False(student.training);
        Assert.Equal(flags, teacher.named_parameters().Select(p => p.parameter.requires_grad));
        Assert.Equal(studentFlags, student.named_parameters().Select(p => p.parameter.requires_grad));
        Assert.All(teacher.parameters(), p => Assert.Null(p.grad));
    }

    [Fact]
    public void Train_ScheduleEvaluationAndProgress_AreReportedPerStep()
    {
        using CausalLanguageModel teacher = TinyStoriesCorpus.Load();
        using CausalLanguageModel student = Int3Student();
        // The block weights' entries that are not zero: RTN's code 0 makes exact zeros, which count as pruned.
        long unmasked = student.named_parameters().Where(p => p.name.StartsWith("model.layers.", StringComparison.Ordinal) && p.name.EndsWith("_proj.weight", StringComparison.Ordinal))
            .Sum(p => p.parameter.count_nonzero().ToInt64());
        var calls = new List<(bool Training, bool Grad)>();
        var schedule = new LearningRateSchedule { Decay = LearningRateDecay.Linear, WarmupSteps = 1, MinimumRatio = 0.2 };
        var options = new DistillerOptions
        {
            Steps = 4,
            LearningRate = 1e-3,
            Schedule = schedule,
            EvaluateEvery = 2,
            Evaluation = model =>
            {
                calls.Add((model.training, torch.is_grad_enabled()));
                return TinyStoriesCorpus.Perplexity(model, windows: 1);
            },
        };
        var recorder = new DistillationRecorder();
        DistillationReport report = Distiller.Train(teacher, student, Batches(), options, recorder);

        Assert.Equal([1, 2, 3, 4], recorder.Seen.Select(p => p.Step));
        Assert.All(recorder.Seen, p => Assert.Equal(4, p.Steps));
        Assert.Equal(report.History, recorder.Seen.Select(p => p.Result));
        Assert.Equal([0, 2, 4], report.Evaluations.Select(e => e.Step));
        Assert.Equal(2, recorder.Seen[1].Evaluation?.Step);
        Assert.Null(recorder.Seen[0].Evaluation);
        Assert.All(calls, c => Assert.Equal((false, false), c));
        Assert.True(report.Evaluations[^1].Value < report.Evaluations[0].Value, "held-out perplexity did not fall");
        for (int t = 0; t < 4; t++)
        {
            Assert.Equal(1e-3 * schedule.Multiplier(t, 4), report.History[t].LearningRate);
        }

        // The default for a student without adapters: scales, factors and block weights; its dense block weights here
        // (2 layers of q, o 128×128, k, v 64×128, gate, up 384×128, down 128×384), less their zeros.
        Assert.Equal(TrainableParts.QuantizationScales | TrainableParts.LowRankFactors | TrainableParts.UnprunedWeights, report.Trainable);
        Assert.InRange(unmasked, 1, 2 * (3 * 128 * 384 + 128 * 128 * 2 + 64 * 128 * 2) - 1);
        Assert.Equal(unmasked, report.TrainableParameters);
    }

    [Fact]
    public void Train_CancelledPackedStudent_CommitsItsScalesAndRestoresItsFlags()
    {
        using CausalLanguageModel teacher = TinyStoriesCorpus.Load();
        using CausalLanguageModel student = TinyStoriesCorpus.Load();
        Quantizer.Pack(student, Quantizer.Apply(student, QuantizerOptions.W4A16 with { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) } }));
        var layers = student.modules().OfType<QuantizedLinear>().Distinct().ToArray();
        var original = layers.Select(l => l.Weight).ToArray();
        using var cancel = new CancellationTokenSource();
        var recorder = new DistillationRecorder(p =>
        {
            if (p.Step == 2)
            {
                cancel.Cancel();
            }
        });

        Assert.ThrowsAny<OperationCanceledException>(() => Distiller.Train(teacher, student, Batches(),
            new DistillerOptions { Steps = 10, LearningRate = 1e-3 }, recorder, cancel.Token));

        Assert.Equal(2, recorder.Seen.Count);
        for (int i = 0; i < layers.Length; i++)
        {
            Assert.Null(layers[i].TrainedScales);
            Assert.NotSame(original[i], layers[i].Weight);
            Assert.Equal(((QuantizedTensor)original[i]).UnpackCodes(), ((QuantizedTensor)layers[i].Weight).UnpackCodes());
        }

        Assert.All(student.parameters(), p => Assert.True(p.requires_grad));

        // The trained scales are not parameters of the module: the packed model saves and loads as before, with them.
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        CompressedModels.Save(student, folder.Path);
        using CausalLanguageModel reloaded = HuggingFaceModels.Load(folder.Path);
        var reloadedLayers = reloaded.modules().OfType<QuantizedLinear>().Distinct().ToArray();
        Assert.Equal(layers.Length, reloadedLayers.Length);
        for (int i = 0; i < layers.Length; i++)
        {
            Assert.Equal(((QuantizedTensor)layers[i].Weight).Scales.ToArray(), ((QuantizedTensor)reloadedLayers[i].Weight).Scales.ToArray());
        }
    }

    [Fact]
    public void RandomWindows_IsDeterministic_StartsWithBos_AndRefusesShortStreams()
    {
        int[] tokens = Enumerable.Range(10, 100).ToArray();
        Tensor[] first = DistillationData.RandomWindows(tokens, window: 9, batchSize: 3, seed: 4, bos: 1).Take(5).ToArray();
        Tensor[] again = DistillationData.RandomWindows(tokens, window: 9, batchSize: 3, seed: 4, bos: 1).Take(5).ToArray();
        Tensor[] other = DistillationData.RandomWindows(tokens, window: 9, batchSize: 3, seed: 5, bos: 1).Take(5).ToArray();
        for (int b = 0; b < 5; b++)
        {
            Assert.Equal([3L, 9L], first[b].shape);
            Assert.Equal(ScalarType.Int64, first[b].dtype);
            Assert.True(first[b].eq(again[b]).all().item<bool>());
            long[] values = first[b].data<long>().ToArray();
            for (int row = 0; row < 3; row++)
            {
                Assert.Equal(1, values[row * 9]);
                // After BOS, 8 consecutive tokens of the stream.
                for (int t = 2; t < 9; t++)
                {
                    Assert.Equal(values[row * 9 + t - 1] + 1, values[row * 9 + t]);
                }
            }
        }

        Assert.Contains(Enumerable.Range(0, 5), b => !first[b].eq(other[b]).all().item<bool>());
        Assert.Equal("tokens", Assert.Throws<ArgumentException>(() => DistillationData.RandomWindows(tokens[..7], 9, 1, 0)).ParamName);
        Assert.Equal("window", Assert.Throws<ArgumentException>(() => DistillationData.RandomWindows(tokens, 1, 1, 0)).ParamName);
        Assert.Equal("batchSize", Assert.Throws<ArgumentException>(() => DistillationData.RandomWindows(tokens, 9, 0, 0)).ParamName);
    }

    [Fact]
    public void Train_BadInput_IsRefusedWithTheParameterName()
    {
        using CausalLanguageModel teacher = TinyStoriesCorpus.Load();
        using CausalLanguageModel student = TinyStoriesCorpus.Load();
        var options = new DistillerOptions { Steps = 1 };
        ArgumentException Refused(IEnumerable<Tensor> batches, DistillerOptions? o = null, CausalLanguageModel? s = null) =>
            Assert.ThrowsAny<ArgumentException>(() => Distiller.Train(teacher, s ?? student, batches, o ?? options));

        Assert.Equal("batches", Refused([]).ParamName);
        Assert.Equal("batches", Refused([torch.zeros([2, 8], ScalarType.Int32)]).ParamName);
        Assert.Equal("batches", Refused([torch.zeros([2, 8, 1], ScalarType.Int64)]).ParamName);
        Assert.Equal("batches", Refused([torch.zeros([2, 1], ScalarType.Int64)]).ParamName);
        Assert.Equal("batches", Refused([torch.zeros([1, 514], ScalarType.Int64)]).ParamName);
        Assert.Contains("[2048, 2048]", Refused([torch.full([2, 8], 2048L)]).Message);
        Assert.Contains("[-1, 0]", Refused([torch.tensor(new long[] { 0, -1 }, [1, 2])]).Message);
        Assert.Equal("student", Refused(Batches(), s: teacher).ParamName);
        Assert.Contains("LowRankFactors", Refused(Batches(), options with { Trainable = TrainableParts.LowRankFactors }).Message);

        // A student with another vocabulary: the same architecture with 100 tokens.
        string config = File.ReadAllText(Compression.Testing.SharedData.File("tinystories-656k", "config.json")).Replace("\"vocab_size\": 2048", "\"vocab_size\": 100");
        using CausalLanguageModel small = HuggingFaceModels.CreateFromConfig(config);
        ArgumentException vocabulary = Refused(Batches(), s: small);
        Assert.Equal("student", vocabulary.ParamName);
        Assert.Contains("100", vocabulary.Message);
        Assert.Contains("2048", vocabulary.Message);

        Assert.Equal("Temperature", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { Temperature = 0 }).ParamName);
        Assert.Equal("Temperature", Assert.Throws<ArgumentOutOfRangeException>(() => options.Objective with { Temperature = -1 }).ParamName);
        Assert.Equal("Steps", Assert.Throws<ArgumentOutOfRangeException>(() => options with { Steps = 0 }).ParamName);
        Assert.Equal("Steps", Assert.Throws<ArgumentOutOfRangeException>(() => options with { Steps = -3 }).ParamName);
        Assert.Equal("Trainable", Assert.Throws<ArgumentOutOfRangeException>(() => options with { Trainable = TrainableParts.None }).ParamName);
        Assert.Equal("LearningRate", Assert.Throws<ArgumentOutOfRangeException>(() => options with { LearningRate = 0 }).ParamName);
        Assert.Equal("LearningRate", Assert.Throws<ArgumentOutOfRangeException>(() => options with { LearningRate = double.NaN }).ParamName);
        Assert.Equal("MaxGradientNorm", Assert.Throws<ArgumentOutOfRangeException>(() => options with { MaxGradientNorm = 0 }).ParamName);
        Assert.Equal("GradientAccumulationSteps", Assert.Throws<ArgumentOutOfRangeException>(() => options with { GradientAccumulationSteps = 0 }).ParamName);
        Assert.Equal("WeightDecay", Assert.Throws<ArgumentOutOfRangeException>(() => options with { WeightDecay = -0.1 }).ParamName);
        Assert.Equal("KeepCheckpoints", Assert.Throws<ArgumentOutOfRangeException>(() => options with { KeepCheckpoints = 0 }).ParamName);
        Assert.Equal("WarmupSteps", Assert.Throws<ArgumentOutOfRangeException>(() => new LearningRateSchedule { WarmupSteps = -1 }).ParamName);
        Assert.Equal("MinimumRatio", Assert.Throws<ArgumentOutOfRangeException>(() => new LearningRateSchedule { MinimumRatio = 1.5 }).ParamName);

        // Refusals left the student as it was: every parameter still trainable, in training mode.
        Assert.All(student.parameters(), p => Assert.True(p.requires_grad));
        Assert.All(student.parameters(), p => Assert.Null(p.grad));
    }

    [Fact]
    public void Train_CheckpointBeyondSteps_OrForOtherTensors_IsRefused()
    {
        using TemporaryDirectory folders = RandomData.CreateTemporaryDirectory();
        using CausalLanguageModel teacher = TinyStoriesCorpus.Load();
        using CausalLanguageModel student = Int3Student();
        var options = new DistillerOptions { Steps = 2, CheckpointDirectory = folders.File("run"), Trainable = TrainableParts.Norms };
        Distiller.Train(teacher, student, Batches(), options);

        // Both refusals come before any tensor is copied: the student keeps the weights it has.
        Dictionary<string, float[]> trained = Snapshot(student);
        Assert.Equal("options", Assert.Throws<ArgumentException>(() => Distiller.Train(teacher, student, Batches(), options with { Steps = 1 })).ParamName);
        Assert.Throws<InvalidDataException>(() => Distiller.Train(teacher, student, Batches(), options with { Steps = 3, Trainable = TrainableParts.Biases | TrainableParts.Norms | TrainableParts.Embeddings }));
        Assert.All(Snapshot(student), p => Assert.True(p.Value.AsSpan().SequenceEqual(trained[p.Key]), p.Key));
        // Resume = false starts afresh, deleting the old checkpoints.
        DistillationReport fresh = Distiller.Train(teacher, student, Batches(), options with { Steps = 1, Resume = false });
        Assert.Equal(0, fresh.ResumedFromStep);
        Assert.Equal(["checkpoint-00000001.safetensors"], Directory.GetFiles(folders.File("run")).Select(Path.GetFileName));
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
