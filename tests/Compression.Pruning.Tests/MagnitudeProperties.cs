using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;
using static Compression.Pruning.Tests.PruningReference;

namespace Compression.Pruning.Tests;

/// <summary>FsCheck properties of magnitude pruning, layer-wise, row-wise and global, against the sort-based reference.</summary>
public class MagnitudeProperties
{
    // Up to 40×70 = 2800 weights: both the sorting path (≤ 512) and the radix select are exercised.
    private static (DenseTensor W, double Sparsity) Case(int seed, PositiveInt rows, PositiveInt columns, int sparsity) =>
        (Matrix(rows.Get % 40 + 1, columns.Get % 70 + 1, seed, ties: (seed & 1) == 0), Sparsity(sparsity));

    [Property(MaxTest = 300)]
    public bool PerLayer_PrunesExactlyTheRoundedCount_AndMatchesTheReference(int seed, PositiveInt rows, PositiveInt columns, int sparsity)
    {
        (DenseTensor w, double s) = Case(seed, rows, columns, sparsity);
        PrunedTensor p = new MagnitudePruningOptions { Sparsity = s }.CreateCompressor().Prune(w);
        return p.Mask.KeptCount == w.Length - PrunedCount(s, w.Length)
            && Bits(p.Mask).SequenceEqual(Unstructured(Magnitudes(w), w.Rows, w.Columns, s, PruningScope.PerLayer));
    }

    [Property(MaxTest = 300)]
    public bool PerRow_PrunesTheRoundedCountInEveryRow_AndMatchesTheReference(int seed, PositiveInt rows, PositiveInt columns, int sparsity)
    {
        (DenseTensor w, double s) = Case(seed, rows, columns, sparsity);
        PrunedTensor p = new MagnitudePruningOptions { Sparsity = s, Scope = PruningScope.PerRow }.CreateCompressor().Prune(w);
        bool[] bits = Bits(p.Mask);
        bool everyRow = Enumerable.Range(0, w.Rows).All(r => bits.Skip(r * w.Columns).Take(w.Columns).Count(k => !k) == PrunedCount(s, w.Columns));
        return everyRow && bits.SequenceEqual(Unstructured(Magnitudes(w), w.Rows, w.Columns, s, PruningScope.PerRow));
    }

    [Property(MaxTest = 200)]
    public bool Decompress_IsTheWeightsWithTheMaskApplied_BitForBit(int seed, PositiveInt rows, PositiveInt columns, int sparsity, bool perRow)
    {
        (DenseTensor w, double s) = Case(seed, rows, columns, sparsity);
        var options = new MagnitudePruningOptions { Sparsity = s, Scope = perRow ? PruningScope.PerRow : PruningScope.PerLayer };
        PrunedTensor p = options.CreateCompressor().Prune(w);
        return p.Decompress().BitwiseEquals(Masked(w, p.Mask)) && p.Report!.Sparsity == p.Mask.Sparsity && double.IsNaN(p.Report.Objective);
    }

    [Property(MaxTest = 200)]
    public bool PruningAgainAtTheSameTarget_GivesTheSameMask(int seed, PositiveInt rows, PositiveInt columns, int sparsity, bool perRow, bool l2)
    {
        (DenseTensor w, double s) = Case(seed, rows, columns, sparsity);
        var options = new MagnitudePruningOptions
        {
            Sparsity = s,
            Scope = perRow ? PruningScope.PerRow : PruningScope.PerLayer,
            Norm = l2 ? PruningNorm.L2 : PruningNorm.L1,
        };
        PrunedTensor once = options.CreateCompressor().Prune(w);
        PrunedTensor twice = options.CreateCompressor().Prune(once.Decompress());
        return Bits(once.Mask).SequenceEqual(Bits(twice.Mask));
    }

    [Property(MaxTest = 200)]
    public bool Global_EqualsLayerPruningOfTheConcatenation(int seed, PositiveInt count, PositiveInt shapes, int sparsity)
    {
        int tensors = count.Get % 4 + 1;
        var random = new Random(shapes.Get);
        DenseTensor[] weights = Enumerable.Range(0, tensors)
            .Select(t => Matrix(random.Next(0, 12), random.Next(1, 30), seed + t, ties: (seed & 1) == 0))
            .ToArray();
        double s = Sparsity(sparsity);
        IReadOnlyList<PrunedTensor> pruned = MagnitudePruner.PruneGlobal(weights, s);

        float[] all = weights.SelectMany(w => w.Span.ToArray()).ToArray();
        var concatenation = new DenseTensor(all, 1, all.Length);
        bool[] expected = Bits(new MagnitudePruningOptions { Sparsity = s }.CreateCompressor().Prune(concatenation).Mask);
        bool[] actual = pruned.SelectMany(p => Bits(p.Mask)).ToArray();
        return pruned.Count == tensors && actual.SequenceEqual(expected)
            && pruned.Select((p, t) => p.Decompress().BitwiseEquals(Masked(weights[t], p.Mask))).All(ok => ok);
    }

    [Theory]
    [InlineData(1, 64, 4096, 0.5)]      // one row past the sort limit: radix select over a row
    [InlineData(2, 300, 97, 0.3)]       // many rows, odd width: the row-parallel path
    [InlineData(3, 128, 512, 0.9)]
    public void LargeFreshInputs_MatchTheSortReference(int seed, int rows, int columns, double sparsity)
    {
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed);
        double[] magnitudes = Magnitudes(w);
        foreach (PruningScope scope in new[] { PruningScope.PerLayer, PruningScope.PerRow })
        {
            PrunedTensor p = new MagnitudePruningOptions { Sparsity = sparsity, Scope = scope }.CreateCompressor().Prune(w);
            Assert.Equal(Unstructured(magnitudes, rows, columns, sparsity, scope), Bits(p.Mask));
        }
    }

    [Fact]
    public void Ties_PruneTheLowerFlatIndexFirst()
    {
        DenseTensor w = DenseTensor.FromValues([1, -1, 1, 2, 1, -0f], 2, 3);
        // Magnitudes 1, 1, 1, 2, 1, 0: three go — the zero, then the two ones of lowest index.
        PrunedTensor p = new MagnitudePruningOptions { Sparsity = 0.5 }.CreateCompressor().Prune(w);
        Assert.Equal([false, false, true, true, true, false], Bits(p.Mask));
    }

    [Fact]
    public void Rounding_IsHalfToEven()
    {
        DenseTensor w = RandomData.GaussianMatrix(1, 5, seed: 4);
        // 0.5·5 = 2.5 → 2 and 0.7·5 = 3.5 → 4 (both exactly representable halves).
        Assert.Equal(3, new MagnitudePruningOptions { Sparsity = 0.5 }.CreateCompressor().Prune(w).Mask.KeptCount);
        Assert.Equal(1, new MagnitudePruningOptions { Sparsity = 0.7 }.CreateCompressor().Prune(w).Mask.KeptCount);
    }
}
