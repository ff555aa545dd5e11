using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Pruning.Tests;

/// <summary>
/// The Pruning rows of the bad-input matrix (docs/reliability.md) beyond <see cref="BadInputTests"/>: SparseGPT and the
/// options with the exact exception type, the parameter and the numbers; valid edge cases (empty matrices, all-zero rows,
/// dead input features that make the Hessian singular) give finite results.
/// </summary>
public class BadInputMatrixTests
{
    private static readonly DenseTensor Good = RandomData.GaussianMatrix(4, 32, seed: 1);

    /// <summary>(what is wrong, the call, the exception type expected exactly, its ParamName or null, a fragment of its message).</summary>
    public static TheoryData<string, Action, Type, string?, string> Cases => new()
    {
        { "SparseGPT: NaN weight", () => SparseGpt().Prune(WithValue(float.NaN), Hessian(32)), typeof(ArgumentException), "weight", "NaN at (2, 5)" },
        { "SparseGPT: -Inf weight", () => SparseGpt().Prune(WithValue(float.NegativeInfinity), Hessian(32)), typeof(ArgumentException), "weight", "-Infinity at (2, 5)" },
        { "SparseGPT: rank-3 weight", () => SparseGpt().Prune(new DenseTensor(2, 2, 32), Hessian(32)), typeof(ArgumentException), "weight", "[2, 2, 32]" },
        { "SparseGPT: no Hessian", () => SparseGpt().Prune(Good, CompressionContext.Default), typeof(ArgumentException), "context", "Hessian" },
        { "SparseGPT: Hessian of the wrong size", () => SparseGpt().Prune(Good, Hessian(31)), typeof(ArgumentException), "context", "32 columns" },
        { "SparseGPT: Hessian without samples", () => SparseGpt().Prune(Good, new CompressionContext { InputHessian = new HessianAccumulator(32) }), typeof(ArgumentException), "context", "no samples" },
        { "SparseGPT: 2:4 on columns not a multiple of 4", () => new SparseGptPruner(SparseGptOptions.TwoFour).Prune(RandomData.GaussianMatrix(4, 30, seed: 2), Hessian(30)), typeof(ArgumentException), "weight", "30" },
        { "SparseGPT: sparsity 1", () => _ = new SparseGptOptions { Sparsity = 1 }, typeof(ArgumentOutOfRangeException), "Sparsity", "1" },
        { "SparseGPT: sparsity NaN", () => _ = new SparseGptOptions { Sparsity = double.NaN }, typeof(ArgumentOutOfRangeException), "Sparsity", "NaN" },
        { "SparseGPT: M of 17", () => _ = new SparseGptOptions { M = 17 }, typeof(ArgumentOutOfRangeException), "M", "17" },
        { "SparseGPT: block size 0", () => _ = new SparseGptOptions { BlockSize = 0 }, typeof(ArgumentOutOfRangeException), "BlockSize", "0" },
        { "SparseGPT: dampening above 1", () => _ = new SparseGptOptions { DampeningPercent = 1.5 }, typeof(ArgumentOutOfRangeException), "DampeningPercent", "1.5" },
        { "magnitude: NaN sparsity", () => _ = new MagnitudePruningOptions { Sparsity = double.NaN }, typeof(ArgumentOutOfRangeException), "Sparsity", "NaN" },
        { "magnitude: null weight", () => new MagnitudePruningOptions().CreateCompressor().Prune(null!), typeof(ArgumentNullException), "weight", "weight" },
        { "Wanda: Hessian without samples", () => new WandaOptions().CreateCompressor().Prune(Good, new CompressionContext { InputHessian = new HessianAccumulator(32) }), typeof(ArgumentException), "context", "no samples" },
        { "Wanda: -Inf weight", () => new WandaOptions().CreateCompressor().Prune(WithValue(float.NegativeInfinity), Hessian(32)), typeof(ArgumentException), "weight", "-Infinity at (2, 5)" },
        { "N:M: NaN weight", () => NofMOptions.TwoOfFour.CreateCompressor().Prune(WithValue(float.NaN)), typeof(ArgumentException), "weight", "NaN at (2, 5)" },
        { "block-sparse: +Inf weight", () => new BlockSparsityOptions { BlockRows = 2, BlockColumns = 4 }.CreateCompressor().Prune(WithValue(float.PositiveInfinity)), typeof(ArgumentException), "weight", "Infinity at (2, 5)" },
        { "structured: NaN weight", () => new StructuredPruningOptions().CreateCompressor().Select(WithValue(float.NaN)), typeof(ArgumentException), "weight", "NaN" },
        { "structured: gradient of another shape", () => new StructuredPruningOptions { Score = ChannelScore.Taylor }.CreateCompressor().Select(Good, new DenseTensor(4, 31)), typeof(ArgumentException), "gradient", "31" },
        { "schedule: end before start", () => new CubicSparsitySchedule { FinalSparsity = 0.5, StartStep = 10, EndStep = 5 }.SparsityAt(7), typeof(ArgumentException), "EndStep", "EndStep (5)" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInput_IsRefused_WithTheDocumentedException(string why, Action call, Type expected, string? parameter, string detail) =>
        BadInput.AssertRefused(why, call, expected, parameter, detail);

    [Fact]
    public void SparseGpt_DeadInputFeatures_AllZeroRows_AndEmptyMatrices_GiveFiniteResults()
    {
        // Always-zero input features make H singular; dampening and the dead-column rule must still give a finite,
        // correctly sparse result. All-zero rows and an empty weight are valid too.
        var hessian = new HessianAccumulator(32);
        DenseTensor x = RandomData.GaussianMatrix(64, 32, seed: 3);
        for (int r = 0; r < x.Rows; r++)
        {
            x[r, 4] = 0;
            x[r, 17] = 0;
        }

        hessian.Add(x);
        var context = new CompressionContext { InputHessian = hessian };
        DenseTensor w = Good.Clone();
        w.Row(1).Clear();
        PrunedTensor p = SparseGpt().Prune(w, context);
        DenseTensor back = p.Decompress();
        Assert.All(back.Span.ToArray(), v => Assert.True(float.IsFinite(v)));
        Assert.All(back.Row(1).ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(64, p.Mask.KeptCount);   // 50% of 4 × 32
        Assert.Equal(0, SparseGpt().Prune(new DenseTensor(0, 32), context).Rows);
    }

    [Fact]
    public void RefusedWeight_IsLeftUntouched()
    {
        DenseTensor poisoned = WithValue(float.NaN);
        int[] before = poisoned.Span.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
        Assert.Throws<ArgumentException>(() => SparseGpt().Prune(poisoned, Hessian(32)));
        Assert.Throws<ArgumentException>(() => new MagnitudePruningOptions().CreateCompressor().Prune(poisoned));
        Assert.Equal(before, poisoned.Span.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray());
    }

    private static SparseGptPruner SparseGpt() => new(SparseGptOptions.Unstructured50);

    private static CompressionContext Hessian(int columns) => new() { InputHessian = RandomData.CorrelatedHessian(columns, 64, seed: 4) };

    private static DenseTensor WithValue(float value) => BadInput.WithValueAt25(Good, value);
}
