using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;
using static Compression.Pruning.Tests.PruningReference;

namespace Compression.Pruning.Tests;

/// <summary>Wanda: its relation to magnitude pruning, its scores against a float64 reference, its objective.</summary>
public class WandaTests
{
    /// <summary>X = Z·A (correlated features) with a few outlier features scaled ×20, as LLM activations have.</summary>
    private static DenseTensor OutlierActivations(int tokens, int columns, int seed)
    {
        DenseTensor z = RandomData.GaussianMatrix(tokens, columns, seed);
        DenseTensor a = RandomData.GaussianMatrix(columns, columns, seed + 1000, standardDeviation: 1 / MathF.Sqrt(columns));
        var x = new DenseTensor(tokens, columns);
        Compression.Numerics.Gemm.Multiply(z.Span, a.Span, x.Span, tokens, columns, columns);
        foreach (int outlier in new[] { 3, columns / 2, columns - 5 })
        {
            for (int t = 0; t < tokens; t++)
            {
                x[t, outlier] *= 20;
            }
        }

        return x;
    }

    [Property(MaxTest = 200)]
    public bool EqualInputNorms_GiveMagnitudePruning(int seed, PositiveInt rows, PositiveInt groups, int sparsity, bool perLayer)
    {
        DenseTensor w = Matrix(rows.Get % 10 + 1, (groups.Get % 10 + 1) * 4, seed, ties: (seed & 1) == 0);
        CompressionContext context = IdentityHessian(w.Columns, a: 1 + (seed & 7));
        double s = Sparsity(sparsity);
        PruningScope scope = perLayer ? PruningScope.PerLayer : PruningScope.PerRow;
        PrunedTensor wanda = new WandaOptions { Sparsity = s, Scope = scope }.CreateCompressor().Prune(w, context);
        PrunedTensor magnitude = new MagnitudePruningOptions { Sparsity = s, Scope = scope }.CreateCompressor().Prune(w);
        PrunedTensor wanda24 = new WandaOptions { NofM = NofMOptions.TwoOfFour }.CreateCompressor().Prune(w, context);
        PrunedTensor magnitude24 = NofMOptions.TwoOfFour.CreateCompressor().Prune(w);
        return Bits(wanda.Mask).SequenceEqual(Bits(magnitude.Mask)) && Bits(wanda24.Mask).SequenceEqual(Bits(magnitude24.Mask));
    }

    [Property(MaxTest = 100)]
    public bool PerRow_PrunesTheRoundedCount_IsMasked_AndIdempotent(int seed, PositiveInt rows, PositiveInt columns, int sparsity)
    {
        DenseTensor w = Matrix(rows.Get % 10 + 1, columns.Get % 40 + 1, seed, ties: (seed & 1) == 0);
        CompressionContext context = HessianOf(RandomData.GaussianMatrix(16, w.Columns, seed + 1));
        var pruner = new WandaOptions { Sparsity = Sparsity(sparsity) }.CreateCompressor();
        PrunedTensor once = pruner.Prune(w, context);
        PrunedTensor twice = pruner.Prune(once.Decompress(), context);
        bool[] bits = Bits(once.Mask);
        long perRow = PrunedCount(pruner.Options.Sparsity, w.Columns);
        return Enumerable.Range(0, w.Rows).All(r => bits.Skip(r * w.Columns).Take(w.Columns).Count(k => !k) == perRow)
            && once.Decompress().BitwiseEquals(Masked(w, once.Mask))
            && bits.SequenceEqual(Bits(twice.Mask));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Scores_MatchAFloat64Reference(int seed)
    {
        DenseTensor w = RandomData.GaussianMatrix(24, 64, seed);
        DenseTensor x = OutlierActivations(96, 64, seed);
        CompressionContext context = HessianOf(x);
        // ‖X_j‖₂ straight from the activations, in float64.
        double[] norms = Enumerable.Range(0, 64).Select(j => Math.Sqrt(Enumerable.Range(0, 96).Sum(t => (double)x[t, j] * x[t, j]))).ToArray();
        double[] scores = Enumerable.Range(0, w.Length).Select(i => Math.Abs((double)w.Span[i]) * norms[i % 64]).ToArray();

        PrunedTensor unstructured = new WandaOptions { Sparsity = 0.6 }.CreateCompressor().Prune(w, context);
        PrunedTensor twoFour = new WandaOptions { NofM = NofMOptions.TwoOfFour }.CreateCompressor().Prune(w, context);
        Assert.Equal(Unstructured(scores, 24, 64, 0.6, PruningScope.PerRow), Bits(unstructured.Mask));
        Assert.Equal(NofM(scores, 24, 64, 2, 4), Bits(twoFour.Mask));
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(14)]
    public void OutlierFeatures_WandaBeatsMagnitudeOnTheLayerObjective(int seed)
    {
        DenseTensor w = RandomData.GaussianMatrix(32, 64, seed);
        CompressionContext context = HessianOf(OutlierActivations(256, 64, seed));
        double wanda = new WandaOptions { Sparsity = 0.5 }.CreateCompressor().Prune(w, context).Report!.Objective;
        double perRow = new MagnitudePruningOptions { Sparsity = 0.5, Scope = PruningScope.PerRow }.CreateCompressor().Prune(w, context).Report!.Objective;
        double perLayer = new MagnitudePruningOptions { Sparsity = 0.5 }.CreateCompressor().Prune(w, context).Report!.Objective;
        double wanda24 = new WandaOptions { NofM = NofMOptions.TwoOfFour }.CreateCompressor().Prune(w, context).Report!.Objective;
        double magnitude24 = NofMOptions.TwoOfFour.CreateCompressor().Prune(w, context).Report!.Objective;
        Assert.True(wanda < perRow && wanda < perLayer, $"wanda {wanda:G4}, magnitude per row {perRow:G4}, per layer {perLayer:G4}");
        Assert.True(wanda24 < magnitude24, $"2:4 wanda {wanda24:G4}, magnitude {magnitude24:G4}");
    }

    [Fact]
    public void Objective_IsTheLayerOutputError()
    {
        DenseTensor w = RandomData.GaussianMatrix(20, 48, seed: 21);
        DenseTensor x = OutlierActivations(64, 48, seed: 22);
        CompressionContext context = HessianOf(x);
        foreach (PrunedTensor p in new[]
        {
            new WandaOptions { Sparsity = 0.4 }.CreateCompressor().Prune(w, context),
            new MagnitudePruningOptions { Sparsity = 0.7 }.CreateCompressor().Prune(w, context),
            NofMOptions.TwoOfFour.CreateCompressor().Prune(w, context),
            new BlockSparsityOptions { BlockRows = 4, BlockColumns = 8 }.CreateCompressor().Prune(w, context),
            new StructuredPruningOptions { Dimension = ChannelDimension.InputChannels }.CreateCompressor().Select(w, null, context).Pruned,
        })
        {
            double expected = Objective(w, p.Decompress(), x);
            // Both sides are float64 sums of ~10⁵ terms of the same magnitude; 1e-9 relative is far above their rounding.
            Assert.Equal(expected, p.Report!.Objective, expected * 1e-9);
        }
    }

    [Fact]
    public void DeadInputFeatures_ArePrunedFirst()
    {
        DenseTensor w = DenseTensor.FromValues([5, 0.1f, 0.2f, 0.3f], 1, 4);
        var x = DenseTensor.FromValues([0, 1, 1, 1, 0, 1, -1, 1], 2, 4);   // feature 0 never fires
        PrunedTensor p = new WandaOptions { Sparsity = 0.25 }.CreateCompressor().Prune(w, HessianOf(x));
        Assert.False(p.Mask.IsKept(0, 0));
        Assert.Equal(3, p.Mask.KeptCount);
    }

    [Fact]
    public void NeedsTheHessian()
    {
        var wanda = new WandaOptions().CreateCompressor();
        Assert.Equal(CalibrationRequirements.InputHessian, wanda.Requirements);
        DenseTensor w = RandomData.GaussianMatrix(4, 8, seed: 1);
        Assert.Throws<ArgumentException>("context", () => wanda.Compress(w, CompressionContext.Default));
        Assert.Throws<ArgumentException>("context", () => wanda.Prune(w, new CompressionContext { InputHessian = new HessianAccumulator(8) }));
    }
}
