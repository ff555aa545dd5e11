using Compression.Pruning.Storage;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Pruning.Tests;

/// <summary>
/// <see cref="ITunableTensor"/> on pruned (bitmask) and N:M tensors: θ is the kept values (stored slots), held to a
/// float64 scatter/gather reference that reads the mask (or the slot indices) one position at a time, and to central
/// differences of L(θ) = Σ G⊙Ŵ(θ).
/// </summary>
public class TunableTensorTests
{
    public static TheoryData<string> Cases() => ["magnitude-50", "random-density-rows", "nofm-2of4", "semi-structured-padded", "semi-structured-4of8"];

    private static CompressedTensor Build(string name)
    {
        DenseTensor w = RandomData.GaussianMatrix(12, 64, seed: 7, standardDeviation: 0.05f);
        return name switch
        {
            "magnitude-50" => new MagnitudePruningOptions { Sparsity = 0.5 }.CreateCompressor().Prune(w),
            "random-density-rows" => SparseCases.RandomPruned(12, 64, seed: 8),     // empty and full rows, kept ±0
            "nofm-2of4" => NofMOptions.TwoOfFour.CreateCompressor().Prune(w),
            "semi-structured-padded" => SemiStructuredTensor.FromPruned(SparseCases.RandomSemiStructured(12, 16, 2, 4, seed: 9)),
            "semi-structured-4of8" => SemiStructuredTensor.FromPruned(NofMOptions.FourOfEight.CreateCompressor().Prune(w), 4, 8),
            _ => throw new ArgumentException(name, nameof(name)),
        };
    }

    /// <summary>Position (row-major) of every θ entry, read independently of the implementation: the mask's bits for a
    /// pruned tensor, group·M + in-group index for an N:M tensor.</summary>
    private static int[] Positions(CompressedTensor tensor)
    {
        if (tensor is SemiStructuredTensor s)
        {
            var slots = new int[s.Rows * s.ValuesPerRow];
            for (int r = 0; r < s.Rows; r++)
            {
                for (int k = 0; k < s.ValuesPerRow; k++)
                {
                    slots[r * s.ValuesPerRow + k] = r * s.Columns + k / s.N * s.M + s.GetIndex(r, k);
                }
            }

            return slots;
        }

        SparsityMask mask = ((PrunedTensor)tensor).Mask;
        var kept = new List<int>();
        for (int r = 0; r < mask.Rows; r++)
        {
            for (int c = 0; c < mask.Columns; c++)
            {
                if (mask.IsKept(r, c))
                {
                    kept.Add(r * mask.Columns + c);
                }
            }
        }

        return [.. kept];
    }

    private static float[] Parameters(ITunableTensor tensor)
    {
        var theta = new float[tensor.TunableParameterCount];
        tensor.GetTunableParameters(theta);
        return theta;
    }

    private static float[] Reconstruct(CompressedTensor tensor, ReadOnlySpan<float> theta)
    {
        var w = new float[tensor.Rows * tensor.Columns];
        ((ITunableTensor)tensor).Reconstruct(theta, w);
        return w;
    }

    private static uint[] Bits(ReadOnlySpan<float> values) => [.. values.ToArray().Select(BitConverter.SingleToUInt32Bits)];

    private static float[] RandomValues(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1))];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Reconstruct_WithOwnParameters_EqualsDecompressBitForBit(string name)
    {
        CompressedTensor t = Build(name);
        float[] theta = Parameters((ITunableTensor)t);
        Assert.Equal(Positions(t).Length, theta.Length);
        Assert.Equal(Bits(t.Decompress().Span), Bits(Reconstruct(t, theta)));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ReconstructAndBackpropagation_EqualTheScatterGatherReference(string name)
    {
        CompressedTensor t = Build(name);
        var tunable = (ITunableTensor)t;
        int[] positions = Positions(t);
        float[] theta = RandomValues(positions.Length, seed: 3);
        var expected = new float[t.Rows * t.Columns];
        for (int k = 0; k < positions.Length; k++)
        {
            expected[positions[k]] = theta[k];
        }

        Assert.Equal(Bits(expected), Bits(Reconstruct(t, theta)));

        float[] g = RandomValues(expected.Length, seed: 4);
        float[] gradient = RandomValues(theta.Length, seed: 5), start = (float[])gradient.Clone();
        tunable.BackpropagateReconstruction(theta, g, gradient);
        // One float32 addition per entry, the same in the reference: bit for bit.
        Assert.Equal(Bits([.. start.Select((s, k) => s + g[positions[k]])]), Bits(gradient));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backpropagation_MatchesCentralDifferences(string name)
    {
        CompressedTensor t = Build(name);
        var tunable = (ITunableTensor)t;
        float[] theta = Parameters(tunable);
        float[] g = RandomValues(t.Rows * t.Columns, seed: 6);
        var gradient = new float[theta.Length];
        tunable.BackpropagateReconstruction(theta, g, gradient);
        var random = new Random(7);
        for (int direction = 0; direction < 4; direction++)
        {
            float[] plus = [.. theta.Select(v => (float)(v + 0.01 * (random.NextDouble() * 2 - 1)))];
            float[] minus = [.. theta.Select((v, k) => 2 * v - plus[k])];
            float[] wPlus = Reconstruct(t, plus), wMinus = Reconstruct(t, minus);
            double difference = 0, magnitude = 0, predicted = 0;
            for (int i = 0; i < g.Length; i++)
            {
                difference += (double)g[i] * wPlus[i] - (double)g[i] * wMinus[i];
                magnitude += Math.Abs(g[i]) * (Math.Abs(wPlus[i]) + Math.Abs(wMinus[i]));
            }

            for (int k = 0; k < theta.Length; k++)
            {
                predicted += gradient[k] * ((double)plus[k] - minus[k]);
                magnitude += Math.Abs(gradient[k] * ((double)plus[k] - minus[k]));
            }

            // Ŵ copies θ exactly and ∂L/∂θ is G gathered exactly, so only the float64 sums round: n·2⁻⁵³ relative to the
            // sum of magnitudes, under 1e-12 for these few thousand terms.
            Assert.True(Math.Abs(difference - predicted) <= 1e-12 * magnitude, $"{difference} vs {predicted}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void WithOwnParameters_ReproducesTheTensorExactly(string name)
    {
        CompressedTensor t = Build(name);
        CompressedTensor back = ((ITunableTensor)t).WithTunableParameters(Parameters((ITunableTensor)t));
        Assert.Equal(t.GetType(), back.GetType());
        Assert.Equal(t.Kind, back.Kind);
        Assert.Same(t.SparsityMask, back.SparsityMask);
        Assert.Equal(t.StorageBits, back.StorageBits);
        Assert.Equal(Bits(t.Decompress().Span), Bits(back.Decompress().Span));
        if (t is PrunedTensor pruned)
        {
            Assert.Same(pruned.Report, ((PrunedTensor)back).Report);
            Assert.Equal(Bits(pruned.Values.Span), Bits(((PrunedTensor)back).Values.Span));
        }
        else
        {
            var s = (SemiStructuredTensor)t;
            Assert.Equal(s.Indices.ToArray(), ((SemiStructuredTensor)back).Indices.ToArray());
        }

        (CompressedTensor read, _) = SparseCases.RoundTrip(back);
        Assert.Equal(t.Kind, read.Kind);
        Assert.True(SparseCases.SameMask(t.SparsityMask!, read.SparsityMask!));
        Assert.Equal(Bits(t.Decompress().Span), Bits(read.Decompress().Span));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void WithPerturbedParameters_KeepsTheMaskAndPrunedZeros(string name)
    {
        CompressedTensor t = Build(name);
        float[] theta = Parameters((ITunableTensor)t);
        float[] perturbed = [.. theta.Zip(RandomValues(theta.Length, seed: 11), (v, d) => v + 0.1f * d)];
        CompressedTensor tuned = ((ITunableTensor)t).WithTunableParameters(perturbed);
        Assert.Same(t.SparsityMask, tuned.SparsityMask);
        Assert.Equal(Bits(perturbed), Bits(Parameters((ITunableTensor)tuned)));
        float[] dense = tuned.Decompress().Span.ToArray();
        Assert.Equal(Bits(Reconstruct(t, perturbed)), Bits(dense));
        var stored = new HashSet<int>(Positions(t));
        for (int i = 0; i < dense.Length; i++)
        {
            Assert.True(stored.Contains(i) || BitConverter.SingleToUInt32Bits(dense[i]) == 0, $"position {i} is {dense[i]}");
        }

        (CompressedTensor read, _) = SparseCases.RoundTrip(tuned);
        Assert.Equal(Bits(dense), Bits(read.Decompress().Span));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadSpans_Throw(string name)
    {
        CompressedTensor t = Build(name);
        var tunable = (ITunableTensor)t;
        float[] theta = Parameters(tunable);
        int n = t.Rows * t.Columns;
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => tunable.GetTunableParameters(new float[theta.Length + 1])).ParamName);
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => tunable.Reconstruct(new float[theta.Length - 1], new float[n])).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => tunable.Reconstruct(theta, new float[n + 1])).ParamName);
        Assert.Equal("weightGradient", Assert.Throws<ArgumentException>(() => tunable.BackpropagateReconstruction(theta, new float[n - 1], new float[theta.Length])).ParamName);
        Assert.Equal("parameterGradient", Assert.Throws<ArgumentException>(() => tunable.BackpropagateReconstruction(theta, new float[n], new float[theta.Length + 1])).ParamName);
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => tunable.WithTunableParameters(new float[theta.Length - 1])).ParamName);
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            float[] broken = (float[])theta.Clone();
            broken[theta.Length / 2] = bad;
            ArgumentException e = Assert.Throws<ArgumentException>(() => tunable.WithTunableParameters(broken));
            Assert.Equal("parameters", e.ParamName);
            Assert.Contains($"{theta.Length / 2}", e.Message, StringComparison.Ordinal);
        }
    }

    [Property(MaxTest = 100)]
    public bool Pruned_ScatterAndGather_MatchTheMaskReference(int seed, PositiveInt rows, PositiveInt columns)
    {
        PrunedTensor t = SparseCases.RandomPruned(rows.Get % 9 + 1, columns.Get % 40 + 1, seed);
        int[] positions = Positions(t);
        float[] theta = RandomValues(positions.Length, seed), g = RandomValues(t.Rows * t.Columns, seed + 1);
        float[] w = Reconstruct(t, theta);
        var gradient = new float[theta.Length];
        t.BackpropagateReconstruction(theta, g, gradient);
        var stored = new HashSet<int>(positions);
        return positions.Select((p, k) => w[p] == theta[k] && gradient[k] == g[p]).All(x => x)
            && Enumerable.Range(0, w.Length).All(i => stored.Contains(i) || BitConverter.SingleToUInt32Bits(w[i]) == 0);
    }
}
