using Compression.Testing;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary><see cref="Pruner.PruneStructure"/>: the shrunk model computes what the full model computes with the
/// removed channels zeroed, and really has fewer parameters.</summary>
[Collection("TorchSharp")]
public class StructuredPruningTests
{
    private static Tensor Logits(CausalLanguageModel model)
    {
        (_, int[] validation) = ShakespeareData.Split();
        using Tensor ids = torch.tensor(validation.AsSpan(0, 2 * 128).ToArray().Select(i => (long)i).ToArray(), [2, 128]);
        using var noGrad = torch.no_grad();
        return model.call(ids);
    }

    [Theory]
    [InlineData("llama-shakespeare-char", true, false)]
    [InlineData("llama-shakespeare-char", true, true)]
    [InlineData("gpt2-shakespeare-char", true, true)]
    public void ShrunkModel_EqualsTheFullModelWithChannelsZeroed(string name, bool mlp, bool attention)
    {
        using CausalLanguageModel pruned = HuggingFaceModels.Load(SharedData.File(name));
        using CausalLanguageModel zeroed = HuggingFaceModels.Load(SharedData.File(name));
        var options = new StructuredModelPruningOptions { Sparsity = 0.5, Mlp = mlp, Attention = attention };
        StructuredPruningModelReport report = Pruner.PruneStructure(pruned, options);

        Assert.Equal(6 * ((mlp ? 1 : 0) + (attention ? 1 : 0)), report.Structures.Count);
        Assert.All(report.Structures, s => Assert.Equal(s.ChannelsBefore - (int)Math.Round(0.5 * s.ChannelsBefore, MidpointRounding.ToEven), s.Kept.Count));
        Assert.True(report.ParametersAfter < report.ParametersBefore);
        Assert.Equal(report.ParametersAfter, pruned.parameters().Sum(p => p.numel()));

        // The reference: the same channels set to zero in the full model (their rows and columns, biases included).
        var structures = zeroed.CanonicalModules().Where(m => m.Module is IPrunableChannels).ToDictionary(m => m.Name, m => (IPrunableChannels)m.Module);
        using (torch.no_grad())
        {
            foreach (StructurePruning s in report.Structures)
            {
                int[] dropped = Enumerable.Range(0, s.ChannelsBefore).Except(s.Kept).ToArray();
                foreach (ChannelSlice slice in structures[s.Name].Slices)
                {
                    foreach (long index in ChannelShrinking.Indices(slice, dropped))
                    {
                        if (slice.Side == ChannelSide.Rows)
                        {
                            slice.Layer.weight![index].zero_();
                            slice.Layer.bias?[index].zero_();
                        }
                        else
                        {
                            slice.Layer.weight![.., index].zero_();
                        }
                    }
                }
            }
        }

        using Tensor expected = Logits(zeroed);
        using Tensor actual = Logits(pruned);
        double error = (actual - expected).abs().max().item<float>(), scale = expected.abs().max().item<float>();
        Assert.True(error <= 1e-4 * scale, $"max |Δ| {error} against max |logit| {scale}");
    }

    [Fact]
    public void Scores_RankChannelsByTheirNorm_AndPackedLayersAreRefused()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        var mlp = (IPrunableChannels)model.CanonicalModules().Single(m => m.Name == "model.layers.0.mlp").Module;
        double[] scores = Pruner.Scores(mlp, l1: false);
        using (torch.no_grad())
        {
            // Channel 7's score, by hand: its gate and up rows and its down column.
            Linear gate = (Linear)mlp.Slices[0].Layer, up = (Linear)mlp.Slices[1].Layer, down = (Linear)mlp.Slices[2].Layer;
            double expected = gate.weight![7].square().sum().item<float>() + up.weight![7].square().sum().item<float>() + down.weight![.., 7].square().sum().item<float>();
            Assert.Equal(expected, scores[7], 4);
        }

        QuantizationReport report = Quantizer.Apply(model, QuantizerOptions.W8A16);
        Quantizer.Pack(model, report);
        Assert.Throws<InvalidOperationException>(() => Pruner.PruneStructure(model, new StructuredModelPruningOptions()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StructuredModelPruningOptions { Sparsity = 1 });
    }
}
