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

/// <summary>Gradual magnitude pruning with the cubic schedule inside a TorchSharp training loop.</summary>
[Collection("TorchSharp")]
public class GradualPruningTests
{
    [Fact]
    public void CubicSchedule_InATrainingLoop_ReachesTheFinalSparsity_AndMasksSurviveTheOptimizer()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        (int[] train, _) = ShakespeareData.Split();
        var schedule = new CubicSparsitySchedule { FinalSparsity = 0.5, StartStep = 0, EndStep = 6, Frequency = 2 };
        var options = new PrunerOptions(new MagnitudePruningOptions { Sparsity = 0.1 }.CreateCompressor()) { Targets = ["*.mlp.*"] };
        model.train();
        using var optimizer = torch.optim.SGD(model.parameters(), learningRate: 0.01);
        PruningModelReport? last = null;
        var sparsities = new List<double>();
        for (int step = 0; step <= 6; step++)
        {
            using (Tensor ids = torch.tensor(train.AsSpan(step * 4096, 2 * 65).ToArray().Select(i => (long)i).ToArray(), [2, 65]))
            {
                optimizer.zero_grad();
                using Tensor logits = model.call(ids[.., ..64]);
                using Tensor loss = torch.nn.functional.cross_entropy(logits.reshape(-1, model.VocabularySize), ids[.., 1..].reshape(-1));
                loss.backward();
                optimizer.step();
            }

            if (schedule.ShouldPrune(step))
            {
                double target = schedule.SparsityAt(step);
                last = Pruner.Apply(model, options with { Pruner = new MagnitudePruningOptions { Sparsity = target }.CreateCompressor() });
                sparsities.Add(target);
            }
            else if (last is not null)
            {
                Assert.Equal(18, Pruner.ReapplyMasks(model, last));
            }

            // Between pruning steps the optimizer moves pruned weights; after re-masking they are zero again.
            if (last is not null)
            {
                using var noGrad = torch.no_grad();
                foreach (LayerPruning layer in last.Layers)
                {
                    var linear = (Linear)model.CanonicalModules().Single(m => m.Name == layer.Name).Module;
                    using Tensor zeros = (linear.weight! == 0).sum();
                    Assert.True(zeros.item<long>() >= layer.Weight!.SparsityMask!.Rows * (long)layer.Weight.SparsityMask.Columns - layer.Weight.SparsityMask.KeptCount);
                }
            }
        }

        Assert.Equal(0.5, sparsities[^1]);
        Assert.True(sparsities.SequenceEqual(sparsities.Order()), "the schedule only rises");
        Assert.All(last!.Layers, l => Assert.Equal(0.5, l.Sparsity, 3));
    }
}
