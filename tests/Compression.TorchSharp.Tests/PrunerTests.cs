using Compression.Pruning;
using Compression.Quantization;
using Compression.Testing;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary><see cref="Pruner.Apply"/> on the shakespeare-char Llama model.</summary>
[Collection("TorchSharp")]
public class PrunerTests
{
    private static int[][] Calibration(int count)
    {
        (int[] train, _) = ShakespeareData.Split();
        return Enumerable.Range(0, count).Select(i => train.AsSpan(i * (train.Length / count), 256).ToArray()).ToArray();
    }

    [Fact]
    public void SparseGpt24_ThenGptqInt4_InOneCall_KeepsTheMaskAndTheCodes()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        var options = new PrunerOptions(SparseGptOptions.TwoFour.CreateCompressor())
        {
            ThenQuantize = QuantizerOptions.W4A16 with { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) }, Method = QuantizationMethod.Gptq },
        };
        var progress = new List<CompressionProgress>();
        PruningModelReport report = Pruner.Apply(model, options, Calibration(4), new Recorder(progress));

        Assert.Equal(42, report.Layers.Count);
        Assert.Equal(42, progress.Count);
        Assert.NotNull(report.Quantization);
        Assert.Equal(42, report.Quantization!.Layers.Count);
        Assert.All(report.Layers, l => Assert.Equal(0.5, l.Sparsity));
        Assert.All(report.Layers, l => Assert.True(double.IsFinite(l.Objective)));
        using var noGrad = torch.no_grad();
        foreach (LayerQuantization q in report.Quantization.Layers)
        {
            Linear layer = (Linear)model.CanonicalModules().Single(m => m.Name == q.Name).Module;
            float[] w = layer.weight!.data<float>().ToArray();
            // Exactly two of every four consecutive weights along a row are zero (2:4), and the weights equal the GPTQ
            // result's dequantized values: the mask survived quantization.
            for (int g = 0; g < w.Length; g += 4)
            {
                Assert.True(w.AsSpan(g, 4).ToArray().Count(v => v == 0) >= 2, $"{q.Name}: group at {g} holds fewer than two zeros");
            }

            Assert.Equal(q.Weight!.Decompress().Span.ToArray(), w);
            Assert.Equal(report.Layers.Single(l => l.Name == q.Name).Weight!.SparsityMask!.ToBytes(), q.Weight.SparsityMask!.ToBytes());
        }

        Assert.True(report.ModelSparsity > 0.4, $"model sparsity {report.ModelSparsity:P1}");
    }

    [Fact]
    public void PrunedModelOutput_EqualsDenseOutputWithTheMaskApplied()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        using CausalLanguageModel reference = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        PruningModelReport report = Pruner.Apply(model, new PrunerOptions(SparseGptOptions.Unstructured50.CreateCompressor()) { Targets = ["*.mlp.*"] }, Calibration(2));
        Assert.Equal(18, report.Layers.Count);
        using var noGrad = torch.no_grad();
        foreach (LayerPruning layer in report.Layers)
        {
            // The reference keeps its dense weights but with the kept values of the pruned tensor: mask ∘ values.
            Linear target = (Linear)reference.CanonicalModules().Single(m => m.Name == layer.Name).Module;
            using Tensor values = layer.Weight!.Decompress().ToTorchTensor();
            target.weight!.copy_(values);
        }

        (_, int[] validation) = ShakespeareData.Split();
        using Tensor ids = torch.tensor(validation.AsSpan(0, 256).ToArray().Select(i => (long)i).ToArray(), [1, 256]);
        using Tensor a = model.call(ids), b = reference.call(ids);
        Assert.True(a.equal(b).all().item<bool>());
    }

    [Fact]
    public void BadInputs_GiveClearErrors()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        var sparseGpt = new PrunerOptions(SparseGptOptions.TwoFour.CreateCompressor());
        Assert.Throws<ArgumentException>(() => Pruner.Apply(model, sparseGpt));                                   // needs calibration
        Assert.Throws<ArgumentException>(() => Pruner.Apply(model, sparseGpt, [Array.Empty<int>()]));
        Assert.Throws<ArgumentException>(() => Pruner.Apply(model, sparseGpt with { Targets = ["*.no_such_proj"] }, Calibration(1)));
        Assert.Throws<ArgumentException>(() => Pruner.Apply(model, sparseGpt with { Ignore = ["Linear"] }, Calibration(1)));
    }
}
