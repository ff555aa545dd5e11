using FsCheck;
using FsCheck.Xunit;

namespace Compression.LowRank.Tests;

/// <summary>The global rank allocation against a brute-force search over every threshold.</summary>
public class WeLoreRankAllocatorTests
{
    private static LayerSpectrum Layer(string name, int m, int n, double decay, double jitter)
    {
        int k = Math.Min(m, n);
        return new LayerSpectrum(name, m, n, Enumerable.Range(0, k).Select(i => Math.Pow(decay, i) * (1 + jitter / (i + 1))).ToArray());
    }

    [Property(MaxTest = 100)]
    public bool Allocation_IsTheBestFeasibleThreshold_ByBruteForce(int seed, PositiveInt layers, PositiveInt ratio)
    {
        var random = new Random(seed);
        LayerSpectrum[] spectra = Enumerable.Range(0, layers.Get % 5 + 1)
            .Select(i => Layer($"l{i}", random.Next(4, 40), random.Next(4, 40), 0.5 + 0.5 * random.NextDouble(), random.NextDouble()))
            .ToArray();
        double r = 0.05 + 0.95 * (ratio.Get % 100) / 100.0;
        double budget = r * spectra.Sum(l => (double)l.Rows * l.Columns);

        // Brute force: every threshold in ascending order; the first whose count fits wins.
        double[] thresholds = spectra.SelectMany(l => l.SingularValues.Select(s => s / l.SingularValues[0])).Append(double.PositiveInfinity)
            .Distinct().OrderBy(t => t).ToArray();
        int?[]? expected = null;
        foreach (double t in thresholds)
        {
            int?[] ranks = spectra.Select(l => ExpectedRank(l, t)).ToArray();
            double parameters = spectra.Zip(ranks, (l, k) => k is int q ? (double)q * (l.Rows + l.Columns) : (double)l.Rows * l.Columns).Sum();
            if (parameters <= budget)
            {
                expected = ranks;
                break;
            }
        }

        if (expected is null)
        {
            try
            {
                WeLoreRankAllocator.Allocate(spectra, r);
                return false;
            }
            catch (ArgumentException e)
            {
                return e.ParamName == "parameterRatio";
            }
        }

        IReadOnlyList<LayerRankAllocation> actual = WeLoreRankAllocator.Allocate(spectra, r);
        return actual.Select(a => a.Rank).SequenceEqual(expected) && actual.Sum(a => (double)a.Parameters) <= budget
            && actual.Select(a => a.Name).SequenceEqual(spectra.Select(l => l.Name));
    }

    [Fact]
    public void HeavyTailedLayers_LoseMoreRank_ThanFlatOnes()
    {
        LayerSpectrum heavy = Layer("heavy", 64, 64, 0.8, 0);   // energy in a few directions
        LayerSpectrum flat = Layer("flat", 64, 64, 0.995, 0);   // nearly uniform spectrum
        // Budget 0.6·8192 = 4915: the flat layer stays dense (4096; any rank that saves anything, r < 32, would need
        // τ > 0.995^32 = 0.85 and leave the heavy layer rank 1), and the heavy one gets what is left, 6 ranks (768).
        IReadOnlyList<LayerRankAllocation> a = WeLoreRankAllocator.Allocate([heavy, flat], 0.6);
        Assert.Equal(6, a[0].Rank);
        Assert.Null(a[1].Rank);
        Assert.Equal(1 - Math.Pow(0.64, 6), a[0].RetainedEnergy, 1e-6);
    }

    [Fact]
    public void BadInput_SaysWhy()
    {
        LayerSpectrum good = Layer("a", 8, 8, 0.9, 0);
        Assert.Throws<ArgumentOutOfRangeException>("parameterRatio", () => WeLoreRankAllocator.Allocate([good], 0));
        Assert.Throws<ArgumentOutOfRangeException>("parameterRatio", () => WeLoreRankAllocator.Allocate([good], 1.5));
        Assert.Throws<ArgumentException>("layers", () => WeLoreRankAllocator.Allocate([], 0.5));
        Assert.Throws<ArgumentException>("layers", () => WeLoreRankAllocator.Allocate([good with { SingularValues = [1, 2] }], 0.5));
        Assert.Throws<ArgumentException>("layers", () => WeLoreRankAllocator.Allocate([good with { SingularValues = [1, double.NaN] }], 0.5));
        Assert.Throws<ArgumentException>("layers", () => WeLoreRankAllocator.Allocate([good with { SingularValues = new double[9] }], 0.5));
        // Rank 1 of an 8×8 layer needs 16 of its 64 parameters: a 10% budget cannot be met.
        Assert.Contains("rank 1", Assert.Throws<ArgumentException>("parameterRatio", () => WeLoreRankAllocator.Allocate([good], 0.1)).Message);
    }

    private static int? ExpectedRank(LayerSpectrum l, double t)
    {
        int k = Math.Max(1, l.SingularValues.Count(s => s / l.SingularValues[0] >= t));
        return (long)k * (l.Rows + l.Columns) >= (long)l.Rows * l.Columns ? null : k;
    }
}
