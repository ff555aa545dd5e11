using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;
using static Compression.Pruning.Tests.PruningReference;

namespace Compression.Pruning.Tests;

/// <summary>Structured pruning: selection rules, zeroed channels, joint selection, shrinking.</summary>
public class StructuredProperties
{
    private static (DenseTensor W, DenseTensor G, StructuredPruningOptions Options) Case(
        int seed, PositiveInt shape, int sparsity, PositiveInt choice)
    {
        int group = choice.Get % 3 + 1;
        var dimension = (ChannelDimension)(choice.Get / 3 % 2);
        int channels = shape.Get % 12 + 1, other = shape.Get / 12 % 9 + 1;
        (int rows, int columns) = dimension == ChannelDimension.OutputChannels ? (channels * group, other) : (other, channels * group);
        DenseTensor w = Matrix(rows, columns, seed, ties: (seed & 1) == 0);
        DenseTensor g = RandomData.GaussianMatrix(rows, columns, seed + 1);
        var options = new StructuredPruningOptions
        {
            Dimension = dimension,
            GroupSize = group,
            Score = (ChannelScore)(choice.Get / 6 % 3),
            Sparsity = Sparsity(sparsity),
            Keep = choice.Get / 18 % 2 == 0 ? null : choice.Get / 36 % (channels + 1),
        };
        return (w, g, options);
    }

    /// <summary>Channel scores from the definitions, in float64 (L2 ranked by its square, as documented).</summary>
    private static double[] ReferenceScores(DenseTensor w, DenseTensor g, StructuredPruningOptions options)
    {
        bool rows = options.Dimension == ChannelDimension.OutputChannels;
        int extent = rows ? w.Rows : w.Columns;
        var sums = new double[extent / options.GroupSize];
        for (int r = 0; r < w.Rows; r++)
        {
            for (int c = 0; c < w.Columns; c++)
            {
                double v = w[r, c];
                sums[(rows ? r : c) / options.GroupSize] += options.Score switch
                {
                    ChannelScore.L1 => Math.Abs(v),
                    ChannelScore.L2 => v * v,
                    _ => Math.Abs(v * g[r, c]),
                };
            }
        }

        return sums;
    }

    [Property(MaxTest = 300)]
    public bool Select_KeepsTheRightCountSorted_ZeroesTheRest_AndMatchesTheReference(int seed, PositiveInt shape, int sparsity, PositiveInt choice)
    {
        (DenseTensor w, DenseTensor g, StructuredPruningOptions options) = Case(seed, shape, sparsity, choice);
        StructuredPruningResult result = options.CreateCompressor().Select(w, g);
        double[] sums = ReferenceScores(w, g, options);
        int channels = sums.Length;
        int keep = options.Keep ?? channels - (int)PrunedCount(options.Sparsity, channels);
        int[] expected = Enumerable.Range(0, channels).OrderByDescending(c => sums[c]).ThenBy(c => c).Take(keep).Order().ToArray();

        IReadOnlyList<int> kept = result.KeptIndices;
        bool sorted = kept.Zip(kept.Skip(1)).All(pair => pair.First < pair.Second);
        bool rows = options.Dimension == ChannelDimension.OutputChannels;
        DenseTensor dense = result.Pruned.Decompress();
        var keptSet = kept.ToHashSet();
        bool zeroed = Enumerable.Range(0, w.Length).All(i =>
        {
            int index = rows ? i / w.Columns : i % w.Columns;
            return keptSet.Contains(index) ? dense.Span[i].Equals(w.Span[i]) : dense.Span[i] == 0 && !result.Pruned.Mask.IsKept(i / w.Columns, i % w.Columns);
        });
        bool scores = result.Scores.Select((s, c) => options.Score == ChannelScore.L2 ? s * s : s)
            .Zip(sums).All(pair => Math.Abs(pair.First - pair.Second) <= 1e-12 * Math.Max(1, pair.Second));
        return sorted && zeroed && scores
            && kept.Count == keep * options.GroupSize
            && result.Selection.KeptChannels.SequenceEqual(expected)
            && dense.BitwiseEquals(Masked(w, result.Pruned.Mask));
    }

    [Property(MaxTest = 200)]
    public bool JointSelection_OfOneMatrix_EqualsSingleSelection(int seed, PositiveInt shape, int sparsity, PositiveInt choice)
    {
        (DenseTensor w, DenseTensor g, StructuredPruningOptions options) = Case(seed, shape, sparsity, choice);
        StructuredPruner pruner = options.CreateCompressor();
        StructuredPruningResult single = pruner.Select(w, g);
        ChannelSelection joint = pruner.SelectJoint([new ChannelMatrix(w, options.Dimension, g)]);
        return joint.KeptIndices.SequenceEqual(single.KeptIndices) && joint.Scores.SequenceEqual(single.Scores)
            && joint.KeptChannels.SequenceEqual(single.Selection.KeptChannels);
    }

    [Property(MaxTest = 200)]
    public bool PruningAgainAtTheSameTarget_GivesTheSameChannels(int seed, PositiveInt shape, int sparsity, PositiveInt choice)
    {
        (DenseTensor w, DenseTensor g, StructuredPruningOptions options) = Case(seed, shape, sparsity, choice);
        StructuredPruner pruner = options.CreateCompressor();
        StructuredPruningResult once = pruner.Select(w, g);
        StructuredPruningResult twice = pruner.Select(once.Pruned.Decompress(), g);
        return once.KeptIndices.SequenceEqual(twice.KeptIndices);
    }

    [Fact]
    public void JointSelection_SumsOverMatrices_AndShrinksDependentLayersConsistently()
    {
        // An MLP with 6 intermediate features: up/gate rows, down columns.
        DenseTensor up = RandomData.GaussianMatrix(6, 5, seed: 1), gate = RandomData.GaussianMatrix(6, 5, seed: 2), down = RandomData.GaussianMatrix(5, 6, seed: 3);
        var pruner = new StructuredPruningOptions { Keep = 4, Score = ChannelScore.L1 }.CreateCompressor();
        ChannelSelection s = pruner.SelectJoint([
            new ChannelMatrix(up, ChannelDimension.OutputChannels),
            new ChannelMatrix(gate, ChannelDimension.OutputChannels),
            new ChannelMatrix(down, ChannelDimension.InputChannels)]);
        double[] expected = Enumerable.Range(0, 6).Select(f =>
            Enumerable.Range(0, 5).Sum(i => Math.Abs((double)up[f, i]) + Math.Abs((double)gate[f, i]) + Math.Abs((double)down[i, f]))).ToArray();
        Assert.Equal(expected.Length, s.ChannelCount);
        for (int f = 0; f < 6; f++)
        {
            Assert.Equal(expected[f], s.Scores[f], 1e-12);
        }

        Assert.Equal(Enumerable.Range(0, 6).OrderByDescending(f => expected[f]).Take(4).Order(), s.KeptIndices);

        DenseTensor up2 = StructuredPruner.Shrink(up, s.KeptIndices, ChannelDimension.OutputChannels);
        DenseTensor down2 = StructuredPruner.Shrink(down, s.KeptIndices, ChannelDimension.InputChannels);
        Assert.Equal([4, 5], up2.Shape.ToArray());
        Assert.Equal([5, 4], down2.Shape.ToArray());
        for (int k = 0; k < 4; k++)
        {
            for (int i = 0; i < 5; i++)
            {
                Assert.Equal(up[s.KeptIndices[k], i], up2[k, i]);
                Assert.Equal(down[i, s.KeptIndices[k]], down2[i, k]);
            }
        }

        // The shrunk MLP computes what the channel-zeroed one does: down·(up x) restricted to the kept features.
        PrunedTensor zeroedDown = StructuredPruner.PruneChannels(down, s.KeptIndices, ChannelDimension.InputChannels);
        Assert.Equal(4.0 / 6, 1 - zeroedDown.Mask.Sparsity, 12);
    }

    [Fact]
    public void Ties_KeepTheLowerChannelFirst()
    {
        DenseTensor w = DenseTensor.FromValues([1, 1, 2, 0, 1, -1, 0, 1], 4, 2);   // L1 scores 2, 2, 2, 1
        StructuredPruningResult r = new StructuredPruningOptions { Keep = 2, Score = ChannelScore.L1 }.CreateCompressor().Select(w);
        Assert.Equal([0, 1], r.KeptIndices);
        Assert.Equal([2.0, 2, 2, 1], r.Scores);
    }

    [Fact]
    public void Heads_AreKeptOrRemovedWhole()
    {
        DenseTensor w = RandomData.GaussianMatrix(16, 8, seed: 4);   // 4 heads of head_dim 4
        for (int c = 0; c < 8; c++)
        {
            w[5, c] *= 0.01f;
            w[6, c] *= 0.01f;   // head 1 holds two weak rows, but also two strong ones
        }

        StructuredPruningResult r = new StructuredPruningOptions { GroupSize = 4, Keep = 3 }.CreateCompressor().Select(w);
        Assert.Equal(3, r.Selection.KeptChannels.Count);
        Assert.Equal(12, r.KeptIndices.Count);
        Assert.All(r.Selection.KeptChannels, h => Assert.Equal(Enumerable.Range(h * 4, 4), r.KeptIndices.Where(i => i / 4 == h)));
    }

    [Fact]
    public void Taylor_NeedsTheGradient()
    {
        DenseTensor w = RandomData.GaussianMatrix(4, 6, seed: 5);
        var taylor = new StructuredPruningOptions { Score = ChannelScore.Taylor }.CreateCompressor();
        Assert.Throws<ArgumentException>("gradient", () => taylor.Compress(w, CompressionContext.Default));
        Assert.Throws<ArgumentException>("gradient", () => taylor.Select(w));
        Assert.Throws<ArgumentException>("gradient", () => taylor.Select(w, RandomData.GaussianMatrix(4, 5, seed: 6)));
        Assert.Equal(2, taylor.Select(w, RandomData.GaussianMatrix(4, 6, seed: 6)).KeptIndices.Count);
    }

    [Fact]
    public void Compress_ReturnsTheZeroedWeight()
    {
        DenseTensor w = RandomData.GaussianMatrix(8, 6, seed: 7);
        var pruner = new StructuredPruningOptions { Dimension = ChannelDimension.InputChannels, Sparsity = 0.5 }.CreateCompressor();
        PrunedTensor p = Assert.IsType<PrunedTensor>(pruner.Compress(w, CompressionContext.Default));
        Assert.Equal(0.5, p.Report!.Sparsity);
        Assert.True(p.Decompress().BitwiseEquals(pruner.Select(w).Pruned.Decompress()));
    }

    [Fact]
    public void Shrink_AndPruneChannels_RejectBadIndices()
    {
        DenseTensor w = RandomData.GaussianMatrix(4, 6, seed: 8);
        Assert.Throws<ArgumentException>("keptIndices", () => StructuredPruner.Shrink(w, [0, 4], ChannelDimension.OutputChannels));
        Assert.Throws<ArgumentException>("keptIndices", () => StructuredPruner.Shrink(w, [2, 1], ChannelDimension.InputChannels));
        Assert.Throws<ArgumentException>("keptIndices", () => StructuredPruner.PruneChannels(w, [1, 1], ChannelDimension.InputChannels));
        Assert.Equal([4, 0], StructuredPruner.Shrink(w, [], ChannelDimension.InputChannels).Shape.ToArray());
    }
}
