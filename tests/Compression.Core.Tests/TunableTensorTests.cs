using Compression.Composition;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Core.Tests;

/// <summary>
/// <see cref="ITunableTensor"/> on Core's representations: a float32 matrix (θ = its values) and a residual sum
/// (θ = the main part's θ, then the correction's; a child that is not tunable contributes its fixed reconstruction).
/// References are float64 sums rounded once, so reconstructions and gradients are compared bit for bit.
/// </summary>
public class TunableTensorTests
{
    private const int Rows = 7, Columns = 11;

    private static readonly CompressedTensorSerializer Serializer = CompressedTensorSerializer.Default
        .WithKind("test-rank1", RankOneTensor.Read);

    private static float[] RandomValues(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1))];
    }

    private static UncompressedTensor Dense(int seed, int rows = Rows, int columns = Columns) =>
        new(DenseTensor.FromValues(RandomValues(rows * columns, seed), rows, columns));

    /// <summary>A rank-one tensor from the test compressors: a representation that is not tunable.</summary>
    private static RankOneTensor Fixed(int seed) => new(RandomValues(Rows, seed), RandomValues(Columns, seed + 1));

    private static float[] Parameters(ITunableTensor tensor)
    {
        var theta = new float[tensor.TunableParameterCount];
        tensor.GetTunableParameters(theta);
        return theta;
    }

    private static float[] Reconstruct(ITunableTensor tensor, ReadOnlySpan<float> theta, int count = Rows * Columns)
    {
        var w = new float[count];
        tensor.Reconstruct(theta, w);
        return w;
    }

    private static uint[] Bits(ReadOnlySpan<float> values) => [.. values.ToArray().Select(BitConverter.SingleToUInt32Bits)];

    private static CompressedTensor RoundTrip(CompressedTensor tensor)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        Serializer.Write(writer, "w", tensor);
        writer.Save(folder.File("w.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("w.safetensors"));
        return Serializer.Read(checkpoint, "w");
    }

    public static TheoryData<string> Cases() => ["dense", "dense+dense", "dense+fixed", "fixed+dense", "fixed+fixed", "(dense+fixed)+dense"];

    private static CompressedTensor Build(string name) => name switch
    {
        "dense" => Dense(1),
        "dense+dense" => new ResidualTensor(Dense(1), Dense(2)),
        "dense+fixed" => new ResidualTensor(Dense(1), Fixed(3)),
        "fixed+dense" => new ResidualTensor(Fixed(3), Dense(2)),
        "fixed+fixed" => new ResidualTensor(Fixed(3), Fixed(5)),
        _ => new ResidualTensor(new ResidualTensor(Dense(1), Fixed(3)), Dense(2)),
    };

    /// <summary>The reference: Ŵ(θ) and, per θ entry, the element it moves, walking the tree independently of the
    /// implementation (dense children own consecutive θ, in order; fixed children add their decompression).</summary>
    private static (double[] Weight, int[] Element) Reference(CompressedTensor tensor, ReadOnlySpan<float> theta)
    {
        var weight = new double[tensor.Rows * tensor.Columns];
        var element = new List<int>();
        int offset = 0;
        void Walk(CompressedTensor t, ReadOnlySpan<float> parameters, double[] into)
        {
            switch (t)
            {
                case ResidualTensor r:
                    var main = new double[into.Length];
                    var correction = new double[into.Length];
                    Walk(r.Main, parameters, main);
                    Walk(r.Correction, parameters, correction);
                    for (int i = 0; i < into.Length; i++)
                    {
                        // Each residual level rounds its float32 sum once, as the float32 addition does.
                        into[i] = (float)(main[i] + correction[i]);
                    }

                    break;
                case UncompressedTensor:
                    for (int i = 0; i < into.Length; i++)
                    {
                        into[i] = parameters[offset + i];
                        element.Add(i);
                    }

                    offset += into.Length;
                    break;
                default:
                    float[] fixedValues = t.Decompress().Span.ToArray();
                    for (int i = 0; i < into.Length; i++)
                    {
                        into[i] = fixedValues[i];
                    }

                    break;
            }
        }

        Walk(tensor, theta, weight);
        return (weight, [.. element]);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Reconstruct_WithOwnParameters_EqualsDecompressBitForBit(string name)
    {
        CompressedTensor t = Build(name);
        var tunable = (ITunableTensor)t;
        float[] theta = Parameters(tunable);
        Assert.Equal(Rows * Columns * name.Split("dense").Length - Rows * Columns, theta.Length);
        Assert.Equal(Bits(t.Decompress().Span), Bits(Reconstruct(tunable, theta)));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ReconstructAndBackpropagation_EqualTheFloat64Reference(string name)
    {
        CompressedTensor t = Build(name);
        var tunable = (ITunableTensor)t;
        float[] theta = RandomValues(tunable.TunableParameterCount, seed: 20);
        (double[] weight, int[] element) = Reference(t, theta);
        Assert.Equal(Bits([.. weight.Select(x => (float)x)]), Bits(Reconstruct(tunable, theta)));

        float[] g = RandomValues(Rows * Columns, seed: 21);
        float[] start = RandomValues(theta.Length, seed: 22), gradient = (float[])start.Clone();
        tunable.BackpropagateReconstruction(theta, g, gradient);
        // ∂Ŵ/∂θ is 1 at the element each entry moves: one float32 addition onto the start value.
        Assert.Equal(Bits([.. start.Select((s, k) => s + g[element[k]])]), Bits(gradient));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backpropagation_MatchesCentralDifferences(string name)
    {
        CompressedTensor t = Build(name);
        var tunable = (ITunableTensor)t;
        float[] theta = Parameters(tunable);
        float[] g = RandomValues(Rows * Columns, seed: 23);
        var gradient = new float[theta.Length];
        tunable.BackpropagateReconstruction(theta, g, gradient);
        var random = new Random(24);
        for (int direction = 0; direction < 4; direction++)
        {
            float[] plus = [.. theta.Select(v => (float)(v + 0.01 * (random.NextDouble() * 2 - 1)))];
            float[] minus = [.. theta.Select((v, k) => 2 * v - plus[k])];
            float[] wPlus = Reconstruct(tunable, plus), wMinus = Reconstruct(tunable, minus);
            double difference = 0, bound = 0, predicted = 0;
            for (int i = 0; i < g.Length; i++)
            {
                difference += (double)g[i] * wPlus[i] - (double)g[i] * wMinus[i];
                // A float32 residual sum rounds once per level (at most two levels here): 2·2⁻²⁴ relative.
                bound += Math.Abs(g[i]) * (Math.Abs(wPlus[i]) + Math.Abs(wMinus[i])) * Math.ScaleB(1.0, -23);
            }

            for (int k = 0; k < theta.Length; k++)
            {
                predicted += gradient[k] * ((double)plus[k] - minus[k]);
            }

            Assert.True(Math.Abs(difference - predicted) <= bound + 1e-15, $"direction {direction}: {difference} vs {predicted}, bound {bound}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void WithOwnParameters_ReproducesTheTensorExactly_AndKeepsFixedChildren(string name)
    {
        CompressedTensor t = Build(name);
        CompressedTensor back = ((ITunableTensor)t).WithTunableParameters(Parameters((ITunableTensor)t));
        Assert.NotSame(t, back);
        Assert.Equal((t.GetType(), t.Kind, t.StorageBits), (back.GetType(), back.Kind, back.StorageBits));
        Assert.Equal(Bits(t.Decompress().Span), Bits(back.Decompress().Span));
        if (t is ResidualTensor r)
        {
            var b = (ResidualTensor)back;
            Assert.True(r.Main is ITunableTensor || ReferenceEquals(r.Main, b.Main));
            Assert.True(r.Correction is ITunableTensor || ReferenceEquals(r.Correction, b.Correction));
        }

        Assert.Equal(Bits(t.Decompress().Span), Bits(RoundTrip(back).Decompress().Span));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void WithPerturbedParameters_StoresThemExactly(string name)
    {
        CompressedTensor t = Build(name);
        var tunable = (ITunableTensor)t;
        float[] perturbed = [.. Parameters(tunable).Zip(RandomValues(tunable.TunableParameterCount, seed: 25), (v, d) => v + 0.1f * d)];
        var tuned = (ITunableTensor)tunable.WithTunableParameters(perturbed);
        Assert.Equal(Bits(perturbed), Bits(Parameters(tuned)));
        Assert.Equal(Bits(Reconstruct(tunable, perturbed)), Bits(((CompressedTensor)tuned).Decompress().Span));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadSpans_Throw(string name)
    {
        var t = (ITunableTensor)Build(name);
        float[] theta = Parameters(t);
        int n = Rows * Columns;
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => t.GetTunableParameters(new float[theta.Length + 1])).ParamName);
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => t.Reconstruct(new float[theta.Length + 1], new float[n])).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => t.Reconstruct(theta, new float[n - 1])).ParamName);
        Assert.Equal("weightGradient", Assert.Throws<ArgumentException>(() => t.BackpropagateReconstruction(theta, new float[n + 1], new float[theta.Length])).ParamName);
        Assert.Equal("parameterGradient", Assert.Throws<ArgumentException>(() => t.BackpropagateReconstruction(theta, new float[n], new float[theta.Length + 1])).ParamName);
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => t.WithTunableParameters(new float[theta.Length + 1])).ParamName);
        foreach (float bad in theta.Length == 0 ? [] : new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            float[] broken = (float[])theta.Clone();
            broken[theta.Length - 1] = bad;
            Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => t.WithTunableParameters(broken)).ParamName);
        }
    }

    [Property(MaxTest = 100)]
    public bool Residual_OfTwoDenseParts_IsTheirFloat32Sum_AndSendsTheGradientToBoth(int seed, PositiveInt rows, PositiveInt columns)
    {
        int r = rows.Get % 12 + 1, c = columns.Get % 12 + 1;
        var t = new ResidualTensor(Dense(seed, r, c), Dense(seed + 1, r, c));
        float[] theta = RandomValues(2 * r * c, seed + 2), g = RandomValues(r * c, seed + 3);
        float[] w = Reconstruct(t, theta, r * c);
        var gradient = new float[theta.Length];
        t.BackpropagateReconstruction(theta, g, gradient);
        return Enumerable.Range(0, r * c).All(i => w[i] == (float)((double)theta[i] + theta[r * c + i]) && gradient[i] == g[i] && gradient[r * c + i] == g[i]);
    }
}
