using Compression.TorchSharp.Adapters;
using FsCheck;
using FsCheck.Xunit;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Adapters;

/// <summary><see cref="LoraLinear"/> (LoRA, rsLoRA, DoRA, PiSSA) on single layers, against float64 references.</summary>
[Collection("TorchSharp")]
public class LoraLinearTests
{
    // Float32 forward passes over a few dozen inputs of unit scale differ from the float64 reference by a few ulps of
    // the partial sums (|y| ≲ 10, ulp ≈ 1e-6); 1e-4 leaves two orders of magnitude of room and still catches any
    // formula error, which shows at the scale of ΔW (≥ 1e-2 here).
    private const double Tolerance = 1e-4;

    internal static Linear Dense(long inFeatures, long outFeatures, int seed, bool bias = true)
    {
        torch.manual_seed(seed);
        return nn.Linear(inFeatures, outFeatures, hasBias: bias);
    }

    internal static Tensor Inputs(long batch, long features, int seed)
    {
        using var generator = new Generator((ulong)seed);
        return torch.randn([batch, 3, features], ScalarType.Float32, generator: generator);
    }

    /// <summary>Gives B (and DoRA's m) non-trivial values, as training would.</summary>
    internal static void Perturb(LoraLinear lora, int seed)
    {
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)seed);
        using (Tensor b = torch.randn(lora.LoraB.shape, ScalarType.Float32, generator: generator))
        {
            lora.LoraB.copy_(b * 0.1);
        }

        if (lora.Magnitude is { } m)
        {
            using Tensor noise = torch.rand(m.shape, ScalarType.Float32, generator: generator);
            m.mul_(noise * 0.5 + 0.75);
        }
    }

    private static Tensor Float64Reference(Linear linear, LoraLinear lora, Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor w = linear.weight!.detach().to(ScalarType.Float64), a = lora.LoraA.detach().to(ScalarType.Float64), b = lora.LoraB.detach().to(ScalarType.Float64);
        Tensor v = w + b.matmul(a) * lora.Scale;
        if (lora.Magnitude is { } m)
        {
            v = m.detach().to(ScalarType.Float64).unsqueeze(1) * v / v.pow(2).sum(1, keepdim: true).sqrt();
        }

        Tensor y = x.to(ScalarType.Float64).matmul(v.t());
        if (linear.bias is { } bias)
        {
            y = y + bias.detach().to(ScalarType.Float64);
        }

        return y.MoveToOuterDisposeScope();
    }

    private static double MaxDifference(Tensor a, Tensor b)
    {
        using Tensor difference = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return difference.item<double>();
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Lora_WithBZero_LeavesOutputsUnchanged_Exactly(bool dora, bool rsLora)
    {
        using Linear reference = Dense(48, 40, 1);
        using Linear wrapped = Dense(48, 40, 1);
        using var lora = new LoraLinear(wrapped, new LoraOptions { Rank = 6, Alpha = 12, UseDora = dora, UseRsLora = rsLora });
        using Tensor x = Inputs(4, 48, 2);
        using Tensor expected = reference.call(x), actual = lora.call(x);
        Assert.True(expected.eq(actual).all().item<bool>(), $"max difference {MaxDifference(expected, actual)}");
        Assert.All(new[] { lora.LoraB }, b => Assert.Equal(0, b.abs().sum().item<float>()));
    }

    [Fact]
    public void LoraA_IsKaimingUniform_WithBound1OverSqrtIn()
    {
        using var lora = new LoraLinear(Dense(400, 64, 3), new LoraOptions { Rank = 16 });
        double bound = 1 / Math.Sqrt(400);
        Assert.True(lora.LoraA.abs().max().item<float>() <= bound);
        // Uniform on [−c, c] has variance c²/3; 6,400 draws pin it within a few percent.
        Assert.Equal(bound * bound / 3, lora.LoraA.to(ScalarType.Float64).var().item<double>(), bound * bound / 3 * 0.1);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Forward_UnmergedAndMerged_MatchTheFloat64Formula(bool dora, bool rsLora)
    {
        using Linear linear = Dense(48, 40, 4);
        using var lora = new LoraLinear(linear, new LoraOptions { Rank = 5, Alpha = 10, UseDora = dora, UseRsLora = rsLora });
        Perturb(lora, 5);
        Assert.Equal(rsLora ? 10 / Math.Sqrt(5) : 2.0, lora.Scale, 12);
        using Tensor x = Inputs(4, 48, 6);
        using Tensor expected = Float64Reference(linear, lora, x);
        using Tensor unmerged = lora.call(x);
        lora.Merge();
        using Tensor merged = lora.call(x);
        Assert.True(lora.IsMerged);
        Assert.True(MaxDifference(expected, unmerged) < Tolerance, $"unmerged differs by {MaxDifference(expected, unmerged)}");
        Assert.True(MaxDifference(expected, merged) < Tolerance, $"merged differs by {MaxDifference(expected, merged)}");
        Assert.True(MaxDifference(merged, unmerged) < Tolerance);
        Assert.True(MaxDifference(expected, unmerged) > 0 || MaxDifference(expected, merged) >= 0);
    }

    [Property(MaxTest = 25)]
    public bool Merge_ThenUnmerge_RestoresTheBaseWeightBitForBit(PositiveInt inRaw, PositiveInt outRaw, PositiveInt rankRaw, bool dora, int seed)
    {
        long inFeatures = inRaw.Get % 40 + 1, outFeatures = outRaw.Get % 40 + 1;
        int rank = (int)(rankRaw.Get % Math.Min(inFeatures, outFeatures)) + 1;
        using Linear linear = Dense(inFeatures, outFeatures, seed);
        using Tensor original = linear.weight!.detach().clone();
        using var lora = new LoraLinear(linear, new LoraOptions { Rank = rank, Alpha = 3, UseDora = dora }, seed);
        Perturb(lora, seed);
        lora.Merge();
        bool changed = !linear.weight!.eq(original).all().item<bool>();
        lora.Unmerge();
        return changed && linear.weight!.eq(original).all().item<bool>() && !lora.IsMerged;
    }

    [Fact]
    public void Merge_Twice_OrUnmergeWithoutMerge_IsRefused()
    {
        using var lora = new LoraLinear(Dense(8, 8, 1), new LoraOptions { Rank = 2 });
        Assert.Throws<InvalidOperationException>(lora.Unmerge);
        lora.Merge();
        Assert.Throws<InvalidOperationException>(lora.Merge);
    }

    [Fact]
    public void Dora_MagnitudeStartsAtTheRowNormsOfW()
    {
        using Linear linear = Dense(32, 24, 7);
        using var lora = new LoraLinear(linear, new LoraOptions { Rank = 4, UseDora = true });
        using Tensor norms = linear.weight!.detach().to(ScalarType.Float64).pow(2).sum(1).sqrt();
        Assert.True(MaxDifference(norms, lora.Magnitude!) < 1e-6);
        Assert.Equal(24 * 4 + 4 * 32 + 24, lora.TrainableParameterCount);
    }

    [Fact]
    public void Pissa_AtInit_LeavesOutputsUnchanged_AndHoldsTheTopSingularTriplets()
    {
        using Linear reference = Dense(48, 40, 8);
        using Linear wrapped = Dense(48, 40, 8);
        const int rank = 6;
        using var lora = new LoraLinear(wrapped, new LoraOptions { Rank = rank, Alpha = 12, Initialization = LoraInitialization.Pissa });
        using Tensor x = Inputs(4, 48, 9);
        using Tensor expected = reference.call(x), actual = lora.call(x);
        Assert.True(MaxDifference(expected, actual) < Tolerance, $"PiSSA changed outputs by {MaxDifference(expected, actual)}");
        // s·B·A is the best rank-r approximation of W (Eckart–Young), computed here independently in float64.
        using Tensor w = reference.weight!.detach().to(ScalarType.Float64);
        (Tensor u, Tensor s, Tensor vh) = torch.linalg.svd(w, fullMatrices: false);
        using Tensor best = u.narrow(1, 0, rank).matmul(torch.diag(s.narrow(0, 0, rank))).matmul(vh.narrow(0, 0, rank));
        using Tensor product = lora.LoraB.detach().to(ScalarType.Float64).matmul(lora.LoraA.detach().to(ScalarType.Float64)) * lora.Scale;
        Assert.True(MaxDifference(best, product) < 1e-5);
        using Tensor residual = w - best;
        Assert.True(MaxDifference(residual, wrapped.weight!) < 1e-5);
        // B and A share √Σ: the column norms of B equal the row norms of A.
        using Tensor bNorms = lora.LoraB.detach().pow(2).sum([0L]).sqrt(), aNorms = lora.LoraA.detach().pow(2).sum(1).sqrt();
        Assert.True(MaxDifference(bNorms, aNorms) < 1e-4, $"B column norms {bNorms.ToString(global::TorchSharp.TensorStringStyle.Numpy)} vs A row norms {aNorms.ToString(global::TorchSharp.TensorStringStyle.Numpy)}");
        u.Dispose(); s.Dispose(); vh.Dispose();
    }

    [Fact]
    public void Dropout_AppliesOnlyInTraining()
    {
        using Linear linear = Dense(32, 32, 10);
        using var lora = new LoraLinear(linear, new LoraOptions { Rank = 4, Dropout = 0.5 });
        Perturb(lora, 11);
        using Tensor x = Inputs(2, 32, 12);
        lora.eval();
        using Tensor first = lora.call(x), second = lora.call(x);
        Assert.True(first.eq(second).all().item<bool>());
        lora.train();
        torch.manual_seed(13);
        using Tensor dropped = lora.call(x);
        Assert.False(dropped.eq(first).all().item<bool>());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void Rank_BelowOne_IsRejected(int rank)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>("Rank", () => new LoraOptions { Rank = rank });
        Assert.Contains("at least 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rank_AboveMinDimensions_IsRejected()
    {
        var e = Assert.Throws<ArgumentException>("options", () => new LoraLinear(Dense(64, 16, 1), new LoraOptions { Rank = 17 }));
        Assert.Contains("min(in, out) = min(64, 16)", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Alpha_NotPositiveAndFinite_IsRejected(double alpha)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>("Alpha", () => new LoraOptions { Alpha = alpha });
        Assert.Contains("greater than 0", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Dropout_OutsideZeroToOne_IsRejected(double dropout)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>("Dropout", () => new LoraOptions { Dropout = dropout });
        Assert.Contains("[0, 1)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DoraOrPissa_WithAnotherMethod_IsRejected()
    {
        var e = Assert.Throws<ArgumentException>("options", () => new LoraOptions { Method = AdapterMethod.Vera, UseDora = true }.Validate());
        Assert.Contains("variants of LoRA", e.Message, StringComparison.Ordinal);
    }
}
