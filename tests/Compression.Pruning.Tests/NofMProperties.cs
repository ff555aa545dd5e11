using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;
using static Compression.Pruning.Tests.PruningReference;

namespace Compression.Pruning.Tests;

/// <summary>FsCheck properties of N:M pruning over random patterns, shapes and tie-heavy data.</summary>
public class NofMProperties
{
    private static (DenseTensor W, NofMOptions Pattern) Case(int seed, PositiveInt pattern, PositiveInt rows, PositiveInt groups)
    {
        int m = pattern.Get % 15 + 2;                   // 2..16
        int n = pattern.Get / 15 % (m - 1) + 1;          // 1..m−1
        DenseTensor w = Matrix(rows.Get % 12, (groups.Get % 8 + 1) * m, seed, ties: (seed & 1) == 0);
        return (w, new NofMOptions { M = m, N = n });
    }

    [Property(MaxTest = 300)]
    public bool EveryGroup_KeepsExactlyN_AndMatchesTheReference(int seed, PositiveInt pattern, PositiveInt rows, PositiveInt groups)
    {
        (DenseTensor w, NofMOptions options) = Case(seed, pattern, rows, groups);
        PrunedTensor p = options.CreateCompressor().Prune(w);
        bool[] bits = Bits(p.Mask);
        bool exactlyN = Enumerable.Range(0, bits.Length / options.M).All(g => bits.Skip(g * options.M).Take(options.M).Count(k => k) == options.N);
        return exactlyN && bits.SequenceEqual(NofM(Magnitudes(w), w.Rows, w.Columns, options.N, options.M));
    }

    [Property(MaxTest = 200)]
    public bool Decompress_IsMasked_AndPruningAgainChangesNothing(int seed, PositiveInt pattern, PositiveInt rows, PositiveInt groups)
    {
        (DenseTensor w, NofMOptions options) = Case(seed, pattern, rows, groups);
        PrunedTensor once = options.CreateCompressor().Prune(w);
        PrunedTensor twice = options.CreateCompressor().Prune(once.Decompress());
        return once.Decompress().BitwiseEquals(Masked(w, once.Mask)) && Bits(once.Mask).SequenceEqual(Bits(twice.Mask));
    }

    [Fact]
    public void TwoOfFour_KeepsTheLargest_AndTheLowerColumnAmongTies()
    {
        DenseTensor w = DenseTensor.FromValues([0.1f, -3, 2, 0.5f, 1, 1, 1, 1], 1, 8);
        PrunedTensor p = NofMOptions.TwoOfFour.CreateCompressor().Prune(w);
        Assert.Equal([false, true, true, false, true, true, false, false], Bits(p.Mask));
        Assert.Equal(0.5, p.Report!.Sparsity);
        Assert.Equal("nm", p.Report.Method);
    }

    [Fact]
    public void FreshLargeInput_MatchesTheReference()
    {
        DenseTensor w = RandomData.GaussianMatrix(96, 1024, seed: 5);
        PrunedTensor p = NofMOptions.FourOfEight.CreateCompressor().Prune(w);
        Assert.Equal(NofM(Magnitudes(w), 96, 1024, 4, 8), Bits(p.Mask));
    }
}
