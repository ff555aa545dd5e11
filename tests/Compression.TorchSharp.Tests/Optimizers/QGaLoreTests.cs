using Compression.TorchSharp.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static Compression.TorchSharp.Tests.Optimizers.GaLoreReference;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Optimizers;

/// <summary>Q-GaLore: INT4 projection storage and the lazy layer-wise refresh.</summary>
[Collection("TorchSharp")]
public class QGaLoreTests
{
    [Theory]
    [InlineData(0)]  // one scale per column
    [InlineData(16)] // groups of 16 along a column of 40: the last group is partial
    public void Int4Projection_DequantizesWithinHalfAStepOfItsScale(int groupSize)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(9);
        Tensor basis = torch.linalg.qr(torch.randn(40, 6)).Q; // orthonormal columns, as a GaLore projection has
        using Int4ColumnMatrix stored = Int4ColumnMatrix.Quantize(basis, groupSize);
        Tensor restored = stored.Dequantize(ScalarType.Float32);

        long g = groupSize == 0 ? 40 : groupSize, groups = (40 + g - 1) / g;
        Assert.Equal([6L, groups], stored.Scales.shape);
        Assert.Equal(Int4ColumnMatrix.StorageBytes(40, 6, groupSize), stored.Bytes);
        // Each element's own scale, [40, 6]: scale of (column j, group i / g).
        Tensor scaleOf = stored.Scales.t().repeat_interleave(g, 0).narrow(0, 0, 40);
        // Rounding x/s to the nearest code errs by at most s/2; float32 division and multiplication add a few ulps of
        // |x| ≤ 7s, hence the 1e-6·s slack.
        Tensor excess = (restored - basis).abs() - scaleOf * (0.5 + 1e-6);
        Assert.True(excess.max().item<float>() <= 0, $"an element is {excess.max().item<float>()} beyond half a step");
        // The grid is symmetric: a sign-flipped singular vector stores negated codes.
        using Int4ColumnMatrix negated = Int4ColumnMatrix.Quantize(-basis, groupSize);
        Assert.True(negated.Dequantize(ScalarType.Float32).eq(-restored).all().item<bool>());
        if (groupSize == 0)
        {
            Assert.True(torch.allclose(stored.Scales.squeeze(1), basis.abs().amax([0]).div(7)));
        }
    }

    [Fact]
    public void QuantizedGaLore_UsesTheDequantizedProjection()
    {
        const int m = 12, n = 20, rank = 4;
        using Parameter p = new(torch.tensor(Gaussian(m * n, seed: 10), [m, n]).to(ScalarType.Float32));
        var options = new GaLoreOptions { Rank = rank, WeightDecay = 0, Scale = 1, Quantization = new QGaLoreOptions() };
        using var optimizer = new GaLoreAdamW([("w", p)], options);
        using (var scope = NewDisposeScope())
        {
            (p * torch.tensor(Gaussian(m * n, seed: 11), [m, n]).to(ScalarType.Float32)).sum().backward();
        }

        optimizer.step();
        using var outer = NewDisposeScope();
        Int4ColumnMatrix stored = optimizer.ProjectorOf(p)!.Quantized!;
        Tensor basis = stored.Dequantize(ScalarType.Float32);
        // The first moment is (1 − β₁)·BᵀG with B the dequantized basis (not the float SVD basis it came from).
        Tensor expected = basis.t().matmul(torch.tensor(Gaussian(m * n, seed: 11), [m, n]).to(ScalarType.Float32)).mul(0.1);
        Assert.True(torch.allclose(optimizer.MomentsOf(p).ExpAvg, expected, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void LazyRefresh_GrowsTheGap_OnlyWhileTheSubspaceStaysPut()
    {
        const int m = 40, n = 30;
        var options = new GaLoreOptions
        {
            Rank = 3, UpdateProjectionGap = 1, Quantization = new QGaLoreOptions { CosineThreshold = 0.9, Patience = 2, GapGrowth = 2 },
        };
        using Parameter still = new(torch.zeros(m, n)), moving = new(torch.zeros(m, n));
        using var optimizer = new GaLoreAdamW([("still", still), ("moving", moving)], options);
        double[] fixedGradient = Gaussian(m * n, seed: 12);
        var stillRefreshes = new List<int>();
        var movingRefreshes = new List<int>();
        for (int t = 1; t <= 12; t++)
        {
            using (var scope = NewDisposeScope())
            {
                (still * torch.tensor(fixedGradient, [m, n]).to(ScalarType.Float32)).sum().backward();
                (moving * torch.tensor(Gaussian(m * n, seed: 700 + t), [m, n]).to(ScalarType.Float32)).sum().backward();
            }

            int a = optimizer.ProjectorOf(still)!.Refreshes, b = optimizer.ProjectorOf(moving)!.Refreshes;
            optimizer.step();
            optimizer.zero_grad();
            if (optimizer.ProjectorOf(still)!.Refreshes > a)
            {
                stillRefreshes.Add(t);
            }

            if (optimizer.ProjectorOf(moving)!.Refreshes > b)
            {
                movingRefreshes.Add(t);
            }
        }

        // Same gradient every step: similarity 1 at every refresh after the first, so after every 2 the gap doubles:
        // refreshes at 1, 2, 3 (gap → 2), 5, 7 (gap → 4), 11.
        Assert.True(stillRefreshes.SequenceEqual([1, 2, 3, 5, 7, 11]), string.Join(", ", stillRefreshes));
        Assert.Equal(4, optimizer.ProjectorOf(still)!.Gap);
        // Not 1: the stored basis is the INT4 one. Per column of 30, the rounding error is ~s/√12 per element with
        // s ≈ max|x|/7, a relative error norm ~0.1, so |cos| ≈ 1 − 0.1²/2 ≈ 0.995; 0.98 leaves room.
        double similarity = optimizer.ProjectorOf(still)!.LastSimilarity;
        Assert.True(similarity > 0.98 && similarity <= 1 + 1e-6, $"similarity {similarity}");
        // Independent gradients: subspaces barely overlap (mean |cos| ~ 0.1), so the layer keeps the base gap of 1.
        Assert.Equal(Enumerable.Range(1, 12), movingRefreshes);
        Assert.Equal(1, optimizer.ProjectorOf(moving)!.Gap);
        Assert.True(optimizer.ProjectorOf(moving)!.LastSimilarity < 0.9, $"similarity {optimizer.ProjectorOf(moving)!.LastSimilarity}");
    }
}
