using Compression.Composition;
using Compression.Quantization;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.LowRank.Tests;

/// <summary>
/// <see cref="ITunableTensor"/> on low-rank factors (θ = [A, B] row-major) and on a quantized + low-rank residual,
/// held to float64 triple-loop references with the error bounds of float32 sums, and to central differences of
/// L(θ) = Σ G⊙Ŵ(θ).
/// </summary>
public class TunableTensorTests
{
    private const int Rows = 20, Columns = 36, Rank = 6;

    // Unit roundoff of float32: the error of a float32 dot product of k terms (FMA or not, any order) is at most
    // (k + 2)·u·Σ|aᵢ||bᵢ| (Higham's γ_k with room for the final rounding).
    private static readonly double U = Math.ScaleB(1.0, -24);

    private static readonly CompressedTensorSerializer Serializer = QuantizedTensor.Register(LowRankTensor.Register(CompressedTensorSerializer.Default));

    public static TheoryData<FactorPrecision> Precisions() => [FactorPrecision.Float32, FactorPrecision.Float16, FactorPrecision.BFloat16];

    private static LowRankTensor Factorize(FactorPrecision precision, int seed = 3) =>
        new LowRankOptions { Rank = RankRule.Fixed(Rank), Precision = precision }.CreateCompressor()
            .Factorize(RandomData.GaussianMatrix(Rows, Columns, seed, standardDeviation: 0.5f));

    private static float[] Parameters(ITunableTensor tensor)
    {
        var theta = new float[tensor.TunableParameterCount];
        tensor.GetTunableParameters(theta);
        return theta;
    }

    private static float[] Reconstruct(ITunableTensor tensor, ReadOnlySpan<float> theta, int rows = Rows, int columns = Columns)
    {
        var w = new float[rows * columns];
        tensor.Reconstruct(theta, w);
        return w;
    }

    private static uint[] Bits(ReadOnlySpan<float> values) => [.. values.ToArray().Select(BitConverter.SingleToUInt32Bits)];

    private static float[] RandomValues(int count, int seed, double scale = 1)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (float)(scale * (random.NextDouble() * 2 - 1)))];
    }

    /// <summary>A·B in float64 and Σ_l |A_il||B_lj| (the scale of its float32 rounding error).</summary>
    private static (double[] Product, double[] Magnitude) ReferenceProduct(ReadOnlySpan<float> theta, int rows, int columns, int rank)
    {
        var product = new double[rows * columns];
        var magnitude = new double[rows * columns];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < columns; j++)
            {
                for (int l = 0; l < rank; l++)
                {
                    double a = theta[i * rank + l], b = theta[rows * rank + l * columns + j];
                    product[i * columns + j] += a * b;
                    magnitude[i * columns + j] += Math.Abs(a * b);
                }
            }
        }

        return (product, magnitude);
    }

    /// <summary>[G·Bᵀ, Aᵀ·G] in float64, and the magnitudes Σ|g||b|, Σ|a||g| bounding each entry's float32 error.</summary>
    private static (double[] Gradient, double[] Magnitude) ReferenceGradient(ReadOnlySpan<float> theta, ReadOnlySpan<float> g, int rows, int columns, int rank)
    {
        var gradient = new double[theta.Length];
        var magnitude = new double[theta.Length];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < columns; j++)
            {
                for (int l = 0; l < rank; l++)
                {
                    double a = theta[i * rank + l], b = theta[rows * rank + l * columns + j], gij = g[i * columns + j];
                    gradient[i * rank + l] += gij * b;
                    magnitude[i * rank + l] += Math.Abs(gij * b);
                    gradient[rows * rank + l * columns + j] += a * gij;
                    magnitude[rows * rank + l * columns + j] += Math.Abs(a * gij);
                }
            }
        }

        return (gradient, magnitude);
    }

    [Theory]
    [MemberData(nameof(Precisions))]
    public void LowRank_ReconstructWithOwnParameters_EqualsDecompressBitForBit(FactorPrecision precision)
    {
        LowRankTensor t = Factorize(precision);
        float[] theta = Parameters(t);
        Assert.Equal((Rows + Columns) * Rank, t.TunableParameterCount);
        Assert.Equal(Bits(t.Left.Span), Bits(theta.AsSpan(0, Rows * Rank)));
        Assert.Equal(Bits(t.Right.Span), Bits(theta.AsSpan(Rows * Rank)));
        Assert.Equal(Bits(t.Decompress().Span), Bits(Reconstruct(t, theta)));
    }

    [Property(MaxTest = 50)]
    public bool LowRank_ReconstructAndBackpropagation_AreWithinFloat32SumBoundsOfTheFloat64Reference(int seed, PositiveInt rows, PositiveInt columns, PositiveInt rank)
    {
        int m = rows.Get % 30 + 1, n = columns.Get % 30 + 1, r = rank.Get % Math.Min(m, n) + 1;
        var t = new LowRankTensor(DenseTensor.FromValues(RandomValues(m * r, seed), m, r), DenseTensor.FromValues(RandomValues(r * n, seed + 1), r, n));
        float[] theta = RandomValues(t.TunableParameterCount, seed + 2, scale: 3);
        float[] w = Reconstruct(t, theta, m, n);
        (double[] product, double[] productMagnitude) = ReferenceProduct(theta, m, n, r);
        bool reconstructOk = w.Select((x, i) => Math.Abs(x - product[i]) <= (r + 2) * U * productMagnitude[i]).All(ok => ok);

        float[] g = RandomValues(m * n, seed + 3);
        float[] start = RandomValues(theta.Length, seed + 4), gradient = (float[])start.Clone();
        t.BackpropagateReconstruction(theta, g, gradient);
        (double[] exact, double[] magnitude) = ReferenceGradient(theta, g, m, n, r);
        // Sums over columns (for A) or rows (for B) with the start value added: (max(m, n) + 3)·u of the magnitudes.
        bool gradientOk = gradient.Select((x, k) => Math.Abs(x - (start[k] + exact[k])) <= (Math.Max(m, n) + 3) * U * (magnitude[k] + Math.Abs(start[k]))).All(ok => ok);
        return reconstructOk && gradientOk;
    }

    [Theory]
    [MemberData(nameof(Precisions))]
    public void LowRank_Backpropagation_MatchesCentralDifferences(FactorPrecision precision)
    {
        LowRankTensor t = Factorize(precision);
        float[] theta = Parameters(t);
        float[] g = RandomValues(Rows * Columns, seed: 5);
        var gradient = new float[theta.Length];
        t.BackpropagateReconstruction(theta, g, gradient);
        (_, double[] gradientMagnitude) = ReferenceGradient(theta, g, Rows, Columns, Rank);
        var random = new Random(6);
        for (int direction = 0; direction < 4; direction++)
        {
            float[] plus = [.. theta.Select(v => (float)(v + 0.01 * (random.NextDouble() * 2 - 1)))];
            float[] minus = [.. theta.Select((v, k) => 2 * v - plus[k])];
            float[] wPlus = Reconstruct(t, plus), wMinus = Reconstruct(t, minus);
            (_, double[] magnitudePlus) = ReferenceProduct(plus, Rows, Columns, Rank);
            (_, double[] magnitudeMinus) = ReferenceProduct(minus, Rows, Columns, Rank);
            double difference = 0, bound = 0;
            for (int i = 0; i < g.Length; i++)
            {
                difference += (double)g[i] * wPlus[i] - (double)g[i] * wMinus[i];
                bound += Math.Abs(g[i]) * (Rank + 2) * U * (magnitudePlus[i] + magnitudeMinus[i]);
            }

            // L is bilinear in (A, B): L(θ₊) − L(θ₋) = ∇L·(θ₊ − θ₋) + Σ G⊙(δA₊δB₊ − δA₋δB₋) exactly, with δ₊ = θ₊ − θ and
            // δ₋ = θ − θ₋ (equal up to the float32 rounding of θ₋, so the second-order term nearly cancels).
            double predicted = 0;
            for (int k = 0; k < theta.Length; k++)
            {
                double delta = (double)plus[k] - minus[k];
                predicted += gradient[k] * delta;
                bound += (Columns + 2) * U * gradientMagnitude[k] * Math.Abs(delta);
            }

            for (int i = 0; i < Rows; i++)
            {
                for (int j = 0; j < Columns; j++)
                {
                    double second = 0;
                    for (int l = 0; l < Rank; l++)
                    {
                        int a = i * Rank + l, b = Rows * Rank + l * Columns + j;
                        second += ((double)plus[a] - theta[a]) * ((double)plus[b] - theta[b]) - ((double)theta[a] - minus[a]) * ((double)theta[b] - minus[b]);
                    }

                    predicted += g[i * Columns + j] * second;
                }
            }

            Assert.True(Math.Abs(difference - predicted) <= bound, $"direction {direction}: {difference} vs {predicted}, bound {bound}");
        }
    }

    /// <summary>bfloat16 rounding to nearest even on the bits (finite inputs): add 0x7FFF plus the kept lowest bit.</summary>
    private static float RoundBFloat16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        return BitConverter.UInt32BitsToSingle((bits + 0x7FFFu + ((bits >> 16) & 1)) & 0xFFFF_0000u);
    }

    private static float RoundTo(float x, FactorPrecision precision) => precision switch
    {
        FactorPrecision.Float16 => (float)(Half)x,
        FactorPrecision.BFloat16 => RoundBFloat16(x),
        _ => x,
    };

    private static T RoundTrip<T>(CompressedTensor tensor)
        where T : CompressedTensor
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        Serializer.Write(writer, "w", tensor);
        writer.Save(folder.File("w.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("w.safetensors"));
        return Assert.IsType<T>(Serializer.Read(checkpoint, "w"));
    }

    [Theory]
    [MemberData(nameof(Precisions))]
    public void LowRank_WithOwnParameters_ReproducesTheTensorExactly(FactorPrecision precision)
    {
        LowRankTensor t = Factorize(precision);
        var back = Assert.IsType<LowRankTensor>(t.WithTunableParameters(Parameters(t)));
        Assert.Equal((t.Rank, t.Precision, t.StorageBits), (back.Rank, back.Precision, back.StorageBits));
        Assert.Same(t.Report, back.Report);
        Assert.Equal(Bits(t.Left.Span), Bits(back.Left.Span));
        Assert.Equal(Bits(t.Right.Span), Bits(back.Right.Span));
        Assert.Equal(Bits(t.Decompress().Span), Bits(back.Decompress().Span));
        LowRankTensor read = RoundTrip<LowRankTensor>(back);
        Assert.Equal(Bits(t.Decompress().Span), Bits(read.Decompress().Span));
    }

    [Theory]
    [MemberData(nameof(Precisions))]
    public void LowRank_WithPerturbedParameters_RoundsToTheFactorPrecision(FactorPrecision precision)
    {
        LowRankTensor t = Factorize(precision);
        float[] theta = Parameters(t);
        float[] perturbed = [.. theta.Zip(RandomValues(theta.Length, seed: 8), (v, d) => v + 0.01f * d)];
        var tuned = Assert.IsType<LowRankTensor>(t.WithTunableParameters(perturbed));
        float[] rounded = [.. perturbed.Select(v => RoundTo(v, precision))];
        Assert.Equal(Bits(rounded), Bits(Parameters(tuned)));
        Assert.Equal(t.Rank, tuned.Rank);
        Assert.Equal(Bits(Reconstruct(t, rounded)), Bits(tuned.Decompress().Span));
        Assert.Equal(Bits(tuned.Decompress().Span), Bits(RoundTrip<LowRankTensor>(tuned).Decompress().Span));
    }

    [Theory]
    [MemberData(nameof(Precisions))]
    public void LowRank_BadSpans_Throw(FactorPrecision precision)
    {
        LowRankTensor t = Factorize(precision);
        float[] theta = Parameters(t);
        int n = Rows * Columns;
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => t.GetTunableParameters(new float[theta.Length - 1])).ParamName);
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => t.Reconstruct(new float[theta.Length + 1], new float[n])).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => t.Reconstruct(theta, new float[n - 1])).ParamName);
        Assert.Equal("weightGradient", Assert.Throws<ArgumentException>(() => t.BackpropagateReconstruction(theta, new float[n + 1], new float[theta.Length])).ParamName);
        Assert.Equal("parameterGradient", Assert.Throws<ArgumentException>(() => t.BackpropagateReconstruction(theta, new float[n], new float[theta.Length - 1])).ParamName);
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => t.WithTunableParameters(new float[theta.Length + 1])).ParamName);
        var bad = new List<float> { float.NaN, float.PositiveInfinity, float.NegativeInfinity };
        if (precision == FactorPrecision.Float16)
        {
            bad.Add(1e6f);                              // finite in float32, +∞ in float16
        }

        foreach (float value in bad)
        {
            float[] broken = (float[])theta.Clone();
            broken[Rows * Rank + 3] = value;           // an entry of B
            ArgumentException e = Assert.Throws<ArgumentException>(() => t.WithTunableParameters(broken));
            Assert.Equal("parameters", e.ParamName);
            Assert.Contains($"Parameter {Rows * Rank + 3} (B)", e.Message, StringComparison.Ordinal);
        }
    }

    // ---- A quantized main part plus a low-rank correction (LoRC): θ = [scales, A, B]. ----

    private static ResidualTensor QuantizedPlusLowRank(RtnOptions quantization)
    {
        DenseTensor w = RandomData.GaussianMatrix(Rows, 64, seed: 12, standardDeviation: 0.05f);
        var compressor = new ResidualCompressor(quantization.CreateCompressor(),
            new LowRankOptions { Rank = RankRule.Fixed(4), Precision = FactorPrecision.BFloat16 }.CreateCompressor());
        return Assert.IsType<ResidualTensor>(compressor.Compress(w, CompressionContext.Default));
    }

    public static TheoryData<string> ResidualCases() => ["int4-g32", "mxfp4"];

    private static RtnOptions ResidualScheme(string name) =>
        name == "mxfp4" ? RtnOptions.Mxfp4 : new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32) };

    [Theory]
    [MemberData(nameof(ResidualCases))]
    public void Residual_ConcatenatesItsChildren_AndReconstructsBitForBit(string scheme)
    {
        ResidualTensor t = QuantizedPlusLowRank(ResidualScheme(scheme));
        var main = (QuantizedTensor)t.Main;
        var correction = (LowRankTensor)t.Correction;
        Assert.Equal(main.TunableParameterCount + correction.TunableParameterCount, t.TunableParameterCount);
        Assert.Equal(scheme == "mxfp4" ? 0 : main.Scales.Length, main.TunableParameterCount);
        float[] theta = Parameters(t);
        Assert.Equal(Bits([.. Parameters(main), .. Parameters(correction)]), Bits(theta));
        Assert.Equal(Bits(t.Decompress().Span), Bits(Reconstruct(t, theta, Rows, 64)));

        // Ŵ is the float32 sum of the children's reconstructions at their parts of θ, and the VJP their VJPs.
        float[] random = [.. theta.Zip(RandomValues(theta.Length, seed: 13), (v, d) => v * (1 + 0.1f * d))];
        int split = main.TunableParameterCount;
        float[] wMain = Reconstruct(main, random.AsSpan(0, split), Rows, 64), wCorrection = Reconstruct(correction, random.AsSpan(split), Rows, 64);
        Assert.Equal(Bits([.. wMain.Zip(wCorrection, (a, b) => a + b)]), Bits(Reconstruct(t, random, Rows, 64)));
        float[] g = RandomValues(Rows * 64, seed: 14);
        var gradient = new float[theta.Length];
        t.BackpropagateReconstruction(random, g, gradient);
        var expected = new float[theta.Length];
        main.BackpropagateReconstruction(random.AsSpan(0, split), g, expected.AsSpan(0, split));
        correction.BackpropagateReconstruction(random.AsSpan(split), g, expected.AsSpan(split));
        Assert.Equal(Bits(expected), Bits(gradient));
    }

    [Theory]
    [MemberData(nameof(ResidualCases))]
    public void Residual_WithParameters_RebuildsBothChildren(string scheme)
    {
        ResidualTensor t = QuantizedPlusLowRank(ResidualScheme(scheme));
        float[] theta = Parameters(t);
        var same = Assert.IsType<ResidualTensor>(t.WithTunableParameters(theta));
        Assert.Equal(Bits(t.Decompress().Span), Bits(same.Decompress().Span));
        Assert.Equal(((QuantizedTensor)t.Main).UnpackCodes(), Assert.IsType<QuantizedTensor>(same.Main).UnpackCodes());
        Assert.Equal(Bits(t.Decompress().Span), Bits(RoundTrip<ResidualTensor>(same).Decompress().Span));

        float[] perturbed = [.. theta.Select((v, k) => v * (1 + 0.05f * ((k % 7) - 3) / 3))];
        var tuned = Assert.IsType<ResidualTensor>(t.WithTunableParameters(perturbed));
        float[] stored = Parameters(tuned);
        Assert.Equal(Bits(Reconstruct(t, stored, Rows, 64)), Bits(tuned.Decompress().Span));
        Assert.Equal(((QuantizedTensor)t.Main).UnpackCodes(), ((QuantizedTensor)tuned.Main).UnpackCodes());
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => t.WithTunableParameters(new float[theta.Length + 1])).ParamName);
        float[] broken = (float[])theta.Clone();
        broken[^1] = float.NaN;
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => t.WithTunableParameters(broken)).ParamName);
    }
}
