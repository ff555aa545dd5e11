using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Pruning.Tests;

/// <summary>Every class of bad input is refused at the public boundary with the parameter named; empty matrices work.</summary>
public class BadInputTests
{
    private static readonly DenseTensor Good = RandomData.GaussianMatrix(4, 8, seed: 1);

    public static TheoryData<string, Action, string> Cases => new()
    {
        { "sparsity 1", () => _ = new MagnitudePruningOptions { Sparsity = 1 }, "Sparsity" },
        { "sparsity negative", () => _ = new WandaOptions { Sparsity = -0.1 }, "Sparsity" },
        { "sparsity NaN", () => _ = new BlockSparsityOptions { Sparsity = double.NaN }, "Sparsity" },
        { "structured sparsity NaN", () => _ = new StructuredPruningOptions { Sparsity = double.NaN }, "Sparsity" },
        { "global sparsity 1", () => MagnitudePruner.PruneGlobal([Good], 1.0), "sparsity" },
        { "N ≥ M", () => _ = new NofMOptions { N = 4, M = 4 }.CreateCompressor(), "N" },
        { "N ≥ M in Wanda", () => _ = new WandaOptions { NofM = new NofMOptions { N = 5 } }.CreateCompressor(), "N" },
        { "M > 16", () => _ = new NofMOptions { M = 17 }, "M" },
        { "N = 0", () => _ = new NofMOptions { N = 0 }, "N" },
        { "columns not a multiple of M", () => new NofMOptions { N = 2, M = 3 }.CreateCompressor().Prune(Good), "weight" },
        { "Wanda columns not a multiple of M", () => new WandaOptions { NofM = new NofMOptions { N = 1, M = 3 } }.CreateCompressor().Prune(Good, PruningReference.IdentityHessian(8)), "weight" },
        { "block rows not dividing", () => new BlockSparsityOptions { BlockRows = 3, BlockColumns = 4 }.CreateCompressor().Prune(Good), "weight" },
        { "block columns not dividing", () => new BlockSparsityOptions { BlockRows = 2, BlockColumns = 5 }.CreateCompressor().Prune(Good), "weight" },
        { "block of zero rows", () => _ = new BlockSparsityOptions { BlockRows = 0 }, "BlockRows" },
        { "group not dividing", () => new StructuredPruningOptions { GroupSize = 3 }.CreateCompressor().Select(Good), "weight" },
        { "keep above channels", () => new StructuredPruningOptions { Keep = 5 }.CreateCompressor().Select(Good), "weight" },
        { "keep negative", () => _ = new StructuredPruningOptions { Keep = -1 }, "Keep" },
        { "joint sizes differ", () => new StructuredPruningOptions().CreateCompressor().SelectJoint([
            new ChannelMatrix(Good, ChannelDimension.OutputChannels), new ChannelMatrix(Good, ChannelDimension.InputChannels)]), "weightsSharingChannels" },
        { "joint empty", () => new StructuredPruningOptions().CreateCompressor().SelectJoint([]), "weightsSharingChannels" },
        { "Hessian of the wrong size (magnitude)", () => new MagnitudePruningOptions().CreateCompressor().Prune(Good, Hessian(7)), "context" },
        { "Hessian of the wrong size (Wanda)", () => new WandaOptions().CreateCompressor().Prune(Good, Hessian(9)), "context" },
        { "Hessian of the wrong size (N:M)", () => NofMOptions.TwoOfFour.CreateCompressor().Prune(Good, Hessian(4)), "context" },
        { "no Hessian for Wanda", () => new WandaOptions().CreateCompressor().Prune(Good, CompressionContext.Default), "context" },
        { "NaN weight", () => new MagnitudePruningOptions().CreateCompressor().Prune(WithValue(float.NaN)), "weight" },
        { "infinite weight", () => NofMOptions.TwoOfFour.CreateCompressor().Prune(WithValue(float.PositiveInfinity)), "weight" },
        { "NaN weight in Wanda", () => new WandaOptions().CreateCompressor().Prune(WithValue(float.NaN), PruningReference.IdentityHessian(8)), "weight" },
        { "NaN weight in a global list", () => MagnitudePruner.PruneGlobal([Good, WithValue(float.NaN)], 0.5), "weights" },
        { "NaN gradient", () => new StructuredPruningOptions { Score = ChannelScore.Taylor }.CreateCompressor().Select(Good, WithValue(float.NaN)), "gradient" },
        { "rank-3 weight", () => new MagnitudePruningOptions().CreateCompressor().Prune(new DenseTensor(2, 2, 4)), "weight" },
        { "rank-1 weight", () => new BlockSparsityOptions { BlockRows = 1, BlockColumns = 1 }.CreateCompressor().Prune(new DenseTensor(4)), "weight" },
        { "rank-3 in a global list", () => MagnitudePruner.PruneGlobal([new DenseTensor(2, 2, 2)], 0.5), "weights" },
        { "rank-3 structured", () => new StructuredPruningOptions().CreateCompressor().Select(new DenseTensor(2, 2, 2)), "weight" },
    };

    private static CompressionContext Hessian(int columns)
    {
        var hessian = new HessianAccumulator(columns);
        hessian.Add(RandomData.GaussianMatrix(3, columns, seed: 2));
        return new CompressionContext { InputHessian = hessian };
    }

    private static DenseTensor WithValue(float value)
    {
        DenseTensor w = Good.Clone();
        w[2, 5] = value;
        return w;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void IsRefused_NamingTheParameter(string why, Action call, string parameter)
    {
        ArgumentException e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.True(parameter == e.ParamName, $"{why}: expected parameter '{parameter}', got '{e.ParamName}' ({e.Message})");
        Assert.False(string.IsNullOrWhiteSpace(e.Message), why);
    }

    [Fact]
    public void NonFiniteWeight_MessageSaysWhere()
    {
        ArgumentException e = Assert.Throws<ArgumentException>(() => new MagnitudePruningOptions().CreateCompressor().Prune(WithValue(float.NaN)));
        Assert.Contains("(2, 5)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyMatrices_GiveEmptyPrunedTensors()
    {
        var empty = new DenseTensor(0, 8);
        CompressionContext hessian = PruningReference.IdentityHessian(8);
        ICompressor[] pruners =
        [
            new MagnitudePruningOptions().CreateCompressor(),
            new MagnitudePruningOptions { Scope = PruningScope.PerRow }.CreateCompressor(),
            NofMOptions.TwoOfFour.CreateCompressor(),
            new BlockSparsityOptions { BlockRows = 2, BlockColumns = 4 }.CreateCompressor(),
            new WandaOptions().CreateCompressor(),
            new StructuredPruningOptions().CreateCompressor(),
        ];
        foreach (ICompressor pruner in pruners)
        {
            PrunedTensor p = Assert.IsType<PrunedTensor>(pruner.Compress(empty, hessian));
            Assert.Equal(0, p.Rows);
            Assert.Equal(8, p.Columns);
            Assert.Equal(0, p.Mask.KeptCount);
            Assert.Equal(0, p.Report!.Objective);
        }

        Assert.Empty(MagnitudePruner.PruneGlobal([], 0.5));
        Assert.Equal(0, MagnitudePruner.PruneGlobal([empty, new DenseTensor(3, 0)], 0.5).Sum(p => p.ElementCount));
        Assert.Empty(new StructuredPruningOptions().CreateCompressor().Select(empty).KeptIndices);
    }

    [Fact]
    public void CancelledToken_StopsEveryPruner()
    {
        using var source = new CancellationTokenSource();
        source.Cancel();
        CompressionContext context = PruningReference.IdentityHessian(8) with { CancellationToken = source.Token };
        ICompressor[] pruners =
        [
            new MagnitudePruningOptions().CreateCompressor(), NofMOptions.TwoOfFour.CreateCompressor(),
            new BlockSparsityOptions { BlockRows = 2, BlockColumns = 4 }.CreateCompressor(), new WandaOptions().CreateCompressor(),
            new StructuredPruningOptions().CreateCompressor(),
        ];
        foreach (ICompressor pruner in pruners)
        {
            Assert.ThrowsAny<OperationCanceledException>(() => pruner.Compress(Good, context));
        }

        Assert.ThrowsAny<OperationCanceledException>(() => MagnitudePruner.PruneGlobal([Good], 0.5, context));
    }

    [Fact]
    public void CancellationDuringALargeLayer_IsHonoured()
    {
        DenseTensor w = RandomData.GaussianMatrix(2048, 512, seed: 3);
        using var source = new CancellationTokenSource();
        var context = new CompressionContext { CancellationToken = source.Token };
        MagnitudePruner pruner = new MagnitudePruningOptions { Scope = PruningScope.PerRow }.CreateCompressor();
        // The token is cancelled from a dedicated thread, not with CancelAfter: a timer callback runs on the thread
        // pool, and this loop (on a pool thread, with the pruner's Parallel.For inside) can keep the pool busy enough
        // that the callback waits indefinitely. That starvation hung the whole test run about one time in five.
        var canceller = new Thread(() =>
        {
            Thread.Sleep(5);
            source.Cancel();
        }) { IsBackground = true };
        canceller.Start();
        // Pruning repeatedly until the token fires: each run checks it between chunks of rows, so the token is seen
        // within one chunk of its cancellation wherever that falls. The deadline turns a missed token into a failure
        // instead of a hang.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Action run = () =>
        {
            while (clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                pruner.Prune(w, context);
            }
        };
        Assert.ThrowsAny<OperationCanceledException>(run);
    }
}
