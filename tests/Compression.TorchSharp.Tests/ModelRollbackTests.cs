using Compression.Pruning;
using Compression.Quantization;
using Compression.Testing;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary>
/// A cancelled (or failed) <see cref="Quantizer.Apply(CausalLanguageModel, QuantizerOptions, IReadOnlyList{int[]}, IProgress{CompressionProgress}?, CancellationToken)"/>
/// or <see cref="Pruner.Apply"/> leaves the model exactly as it was, and a later run gives the same bits as one that was
/// never interrupted.
/// </summary>
[Collection("TorchSharp")]
public class ModelRollbackTests
{
    /// <summary>Cancels the token when the given number of layers has been reported (synchronously, so the point is exact).</summary>
    private sealed class CancelAfter(CancellationTokenSource source, int layers) : IProgress<CompressionProgress>
    {
        public int Reports { get; private set; }

        public void Report(CompressionProgress value)
        {
            if (++Reports == layers)
            {
                source.Cancel();
            }
        }
    }

    private static int[][] Calibration()
    {
        var random = new Random(11);
        return Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, 64).Select(_ => random.Next(2048)).ToArray()).ToArray();
    }

    private static Dictionary<string, Tensor> Snapshot(CausalLanguageModel model)
    {
        using var noGrad = torch.no_grad();
        return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
    }

    private static void AssertBitIdentical(Dictionary<string, Tensor> expected, CausalLanguageModel model)
    {
        using var noGrad = torch.no_grad();
        foreach ((string name, Parameter parameter) in model.named_parameters())
        {
            // Bits, not values: equal() would call -0 and +0 equal.
            using Tensor actual = parameter.detach().contiguous();
            Assert.True(expected[name].bytes.SequenceEqual(actual.bytes), $"'{name}' differs.");
        }
    }

    public static TheoryData<string, int> Runs() => new()
    {
        { "rtn", 1 }, { "rtn", 9 }, { "gptq", 2 }, { "gptq", 6 }, { "sparsegpt+gptq", 3 }, { "magnitude", 5 },
        { "factorize", 4 }, { "factorize-whitened", 2 }, { "reconstruct", 3 },
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public void Apply_CancelledAfterSomeLayers_LeavesTheModelUntouched_AndARerunMatchesAnUninterruptedRun(string run, int cancelAfter)
    {
        int[][] calibration = Calibration();
        void Apply(CausalLanguageModel model, IProgress<CompressionProgress>? progress, CancellationToken token)
        {
            QuantizerOptions int4 = QuantizerOptions.W4A16 with { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) } };
            switch (run)
            {
                case "rtn":
                    Quantizer.Apply(model, int4, calibration, progress, token);
                    break;
                case "gptq":
                    Quantizer.Apply(model, int4 with { Method = QuantizationMethod.Gptq }, calibration, progress, token);
                    break;
                case "sparsegpt+gptq":
                    Pruner.Apply(model, new PrunerOptions(SparseGptOptions.TwoFour.CreateCompressor()) { ThenQuantize = int4 with { Method = QuantizationMethod.Gptq } },
                        calibration, progress, token);
                    break;
                case "reconstruct":
                    Reconstructor.Apply(model, new ReconstructorOptions(new RoundToNearestQuantizer(int4.Quantization)), calibration, progress, token);
                    break;
                case "factorize":
                    Factorizer.Apply(model, new FactorizerOptions(), calibration, progress, token);
                    break;
                case "factorize-whitened":
                    Factorizer.Apply(model, new FactorizerOptions { LowRank = new Compression.LowRank.LowRankOptions { Whitening = Compression.LowRank.ActivationWhitening.Cholesky } },
                        calibration, progress, token);
                    break;
                default:
                    Pruner.Apply(model, new PrunerOptions(new MagnitudePruningOptions { Sparsity = 0.5 }.CreateCompressor()), calibration, progress, token);
                    break;
            }
        }

        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        Dictionary<string, Tensor> original = Snapshot(model);
        using var source = new CancellationTokenSource();
        var progress = new CancelAfter(source, cancelAfter);
        Assert.ThrowsAny<OperationCanceledException>(() => Apply(model, progress, source.Token));
        Assert.Equal(cancelAfter, progress.Reports);
        AssertBitIdentical(original, model);

        Apply(model, null, CancellationToken.None);
        using CausalLanguageModel uninterrupted = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        Apply(uninterrupted, null, CancellationToken.None);
        AssertBitIdentical(Snapshot(uninterrupted), model);
        // (Factorizer's rerun swaps in low-rank modules, whose parameters have other names.)
        Assert.False(Snapshot(model).All(p => original.TryGetValue(p.Key, out Tensor? o) && o.bytes.SequenceEqual(p.Value.bytes)), "The rerun changed nothing.");
    }

    [Theory]
    [InlineData("gptq", 3)]
    [InlineData("rtn", 5)]
    public void ApplyResumable_CancelledAfterSomeLayers_ResumesThoseLayers_AndEqualsAnUninterruptedRun(string method, int cancelAfter)
    {
        int[][] calibration = Calibration();
        QuantizerOptions options = QuantizerOptions.W4A16 with
        {
            Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) },
            Method = method == "gptq" ? QuantizationMethod.Gptq : QuantizationMethod.RoundToNearest,
        };
        string journal = Path.Combine(Path.GetTempPath(), $"layer-journal-{Guid.NewGuid():N}");
        try
        {
            using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
            Dictionary<string, Tensor> original = Snapshot(model);
            using var source = new CancellationTokenSource();
            Assert.ThrowsAny<OperationCanceledException>(() =>
                Quantizer.ApplyResumable(model, options, calibration, journal, new CancelAfter(source, cancelAfter), source.Token));
            AssertBitIdentical(original, model);
            Assert.Equal(cancelAfter, Directory.GetFiles(journal, "*.safetensors").Length);

            // A journal written for other options is not reused (and is overwritten layer by layer).
            using (CausalLanguageModel other = HuggingFaceModels.Load(SharedData.File("tinystories-656k")))
            {
                string otherJournal = journal + "-copy";
                CopyFolder(journal, otherJournal);
                QuantizationReport mismatched = Quantizer.ApplyResumable(other, options with { Quantization = RtnOptions.W8PerChannel }, calibration, otherJournal);
                Assert.Equal(0, mismatched.ResumedLayers);
                Assert.False(Directory.Exists(otherJournal));
            }

            QuantizationReport resumed = Quantizer.ApplyResumable(model, options, calibration, journal);
            Assert.Equal(cancelAfter, resumed.ResumedLayers);
            Assert.False(Directory.Exists(journal), "The journal is deleted when the run completes.");

            using CausalLanguageModel uninterrupted = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
            QuantizationReport expected = Quantizer.Apply(uninterrupted, options, calibration);
            AssertBitIdentical(Snapshot(uninterrupted), model);
            Assert.Equal(expected.Layers.Select(l => l.Objective), resumed.Layers.Select(l => l.Objective));
            Assert.Equal(expected.CompressedBits, resumed.CompressedBits);
        }
        finally
        {
            if (Directory.Exists(journal))
            {
                Directory.Delete(journal, recursive: true);
            }
        }
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
    }
}
