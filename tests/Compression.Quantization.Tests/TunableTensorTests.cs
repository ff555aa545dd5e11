using Compression.Calibration;
using Compression.Pruning;
using Compression.Quantization.Formats;
using Compression.Quantization.Rotation;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests;

/// <summary>
/// <see cref="ITunableTensor"/> on quantized and GPTQ tensors, held to a float64 scalar reference built from the codes
/// alone (value(code) or code − zero point, the group by index arithmetic) and to central differences of
/// L(θ) = Σ G⊙Ŵ(θ).
/// </summary>
public class TunableTensorTests
{
    private const int Rows = 9, Columns = 128;

    // 2⁻²³: two float32 roundings (the NVFP4 product θ·g, then value·(θ·g)) bound the relative error of an element.
    private static readonly double TwoRoundings = Math.ScaleB(1.0, -23);

    private static readonly Dictionary<string, RtnOptions> Schemes = BuildSchemes();

    private static Dictionary<string, RtnOptions> BuildSchemes()
    {
        var schemes = new Dictionary<string, RtnOptions>();
        foreach (int bits in new[] { 2, 3, 4, 8 })
        {
            foreach (bool symmetric in new[] { true, false })
            {
                string kind = symmetric ? "sym" : "asym";
                schemes[$"int{bits}-per-channel-{kind}"] = new RtnOptions { Format = NumberFormat.Int(bits), Granularity = Granularity.PerChannel, Symmetric = symmetric };
                schemes[$"int{bits}-g32-{kind}"] = new RtnOptions { Format = NumberFormat.Int(bits), Granularity = Granularity.PerGroup(32), Symmetric = symmetric };
            }
        }

        schemes["int4-g48-asym-partial-groups"] = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(48), Symmetric = false };
        schemes["int4-per-tensor-sym"] = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerTensor };
        schemes["int8-block-4x32-asym"] = new RtnOptions { Format = NumberFormat.Int8, Granularity = Granularity.PerBlock(4, 32), Symmetric = false };
        schemes["int4-g32-f16-scales"] = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), ScaleStorage = ScaleEncoding.Float16 };
        schemes["int4-g32-bf16-scales-asym"] = new RtnOptions
        {
            Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), ScaleStorage = ScaleEncoding.BFloat16, Symmetric = false,
        };
        schemes["fp8-e4m3-per-channel"] = RtnOptions.Fp8PerChannel;
        schemes["fp4-e2m1-g32-bf16-scales"] = new RtnOptions { Format = NumberFormat.Fp4E2M1, Granularity = Granularity.PerGroup(32), ScaleStorage = ScaleEncoding.BFloat16 };
        schemes["nvfp4"] = RtnOptions.Nvfp4;
        schemes["ternary-absmean-g64"] = new RtnOptions { Format = NumberFormat.TernaryAbsMean, Granularity = Granularity.PerGroup(64) };
        schemes["mxfp4"] = RtnOptions.Mxfp4;
        schemes["nf4"] = RtnOptions.Nf4;
        return schemes;
    }

    public static TheoryData<string> AllSchemes() => [.. Schemes.Keys];

    public static TheoryData<string> TunableSchemes() => [.. Schemes.Keys.Where(k => k is not ("mxfp4" or "nf4"))];

    /// <summary>A seeded weight with an all-zero row, so some groups have scale 0 (which must round-trip too).</summary>
    private static QuantizedTensor Quantize(string scheme)
    {
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 11 + scheme.Length, standardDeviation: 0.05f);
        w.Row(4).Clear();
        return Schemes[scheme].CreateCompressor().Quantize(w);
    }

    /// <summary>The float64 reference: per element, value(code) (code − zero point for integers), the tensor scale g
    /// it is multiplied by before the group scale (1 but for NVFP4), and the group index.</summary>
    private static (double[] Value, int[] Group) Reference(QuantizedTensor q)
    {
        byte[] codes = q.UnpackCodes();
        byte[] zeros = q.ZeroPoints.ToArray();
        var values = new double[codes.Length];
        var groups = new int[codes.Length];
        (int blockRows, int width) = q.Granularity switch
        {
            PerTensorGranularity => (q.Rows, q.Columns),
            PerChannelGranularity => (1, q.Columns),
            PerGroupGranularity g => (1, g.Size),
            PerBlockGranularity b => (b.Rows, b.Columns),
            _ => throw new InvalidOperationException(),
        };
        int segments = (q.Columns + width - 1) / width;
        for (int r = 0; r < q.Rows; r++)
        {
            for (int c = 0; c < q.Columns; c++)
            {
                int i = r * q.Columns + c, g = r / blockRows * segments + c / width;
                groups[i] = g;
                values[i] = q.Format.Name switch
                {
                    string n when n.StartsWith("int", StringComparison.Ordinal) =>
                        codes[i] - (zeros.Length > 0 ? zeros[g] : 1 << ((int)q.Format.ElementBits - 1)),
                    "fp8-e4m3" => MiniFloatCodec.Fp8E4M3.Decode(codes[i]),
                    "fp4-e2m1" or "nvfp4" or "mxfp4" => MiniFloatCodec.Fp4E2M1.Decode(codes[i]),
                    "ternary-absmean" => codes[i] - 1,
                    "nf4" => Nf4Format.Values[codes[i]],
                    _ => throw new InvalidOperationException(q.Format.Name),
                };
            }
        }

        return (values, groups);
    }

    /// <summary>Ŵ(θ) in float64 arithmetic, rounded where the decoder rounds: (float)(θ·g) then (float)(value·that).
    /// Both products of a float32 pair are exact in float64, so each cast is one correctly rounded float32 product.</summary>
    private static float[] ReferenceReconstruction(QuantizedTensor q, ReadOnlySpan<float> theta)
    {
        (double[] value, int[] group) = Reference(q);
        var result = new float[value.Length];
        for (int i = 0; i < result.Length; i++)
        {
            float scale = (float)((double)theta[group[i]] * q.GlobalScale);
            result[i] = (float)(value[i] * scale);
        }

        return result;
    }

    private static float[] Parameters(ITunableTensor tensor)
    {
        var theta = new float[tensor.TunableParameterCount];
        tensor.GetTunableParameters(theta);
        return theta;
    }

    private static float[] Reconstruct(ITunableTensor tensor, CompressedTensor compressed, ReadOnlySpan<float> theta)
    {
        var w = new float[compressed.Rows * compressed.Columns];
        tensor.Reconstruct(theta, w);
        return w;
    }

    private static void AssertBitwiseEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToUInt32Bits(expected[i]) != BitConverter.SingleToUInt32Bits(actual[i]))
            {
                Assert.Fail($"Element {i}: expected {expected[i]} (0x{BitConverter.SingleToUInt32Bits(expected[i]):X8}), got {actual[i]} (0x{BitConverter.SingleToUInt32Bits(actual[i]):X8}).");
            }
        }
    }

    private static float[] Decompressed(CompressedTensor tensor) => tensor.Decompress().Span.ToArray();

    [Theory]
    [MemberData(nameof(AllSchemes))]
    public void Quantized_ReconstructWithOwnParameters_EqualsDecompressBitForBit(string scheme)
    {
        QuantizedTensor q = Quantize(scheme);
        float[] theta = Parameters(q);
        Assert.Equal(scheme is "mxfp4" or "nf4" ? 0 : q.Scales.Length, q.TunableParameterCount);
        if (theta.Length > 0)
        {
            Assert.Equal(q.Scales.ToArray(), theta);
        }

        AssertBitwiseEqual(Decompressed(q), Reconstruct(q, q, theta));
    }

    [Theory]
    [MemberData(nameof(TunableSchemes))]
    public void Quantized_ReconstructAtRandomParameters_EqualsTheFloat64ReferenceBitForBit(string scheme)
    {
        QuantizedTensor q = Quantize(scheme);
        var random = new Random(5);
        // Any θ, negative and zero included: Reconstruct does not round to storage.
        float[] theta = [.. Enumerable.Range(0, q.TunableParameterCount).Select(_ => (float)(random.NextDouble() * 4 - 1))];
        AssertBitwiseEqual(ReferenceReconstruction(q, theta), Reconstruct(q, q, theta));
    }

    [Theory]
    [MemberData(nameof(AllSchemes))]
    public void Quantized_UnscaledValuesTimesScales_EqualsDecompress(string scheme)
    {
        QuantizedTensor q = Quantize(scheme);
        float[] u = q.UnscaledValues();
        int[] index = q.ScaleIndex();
        (double[] value, int[] group) = Reference(q);
        Assert.Equal(group, index);
        float[] dense = Decompressed(q);
        float[] scales = q.Scales.ToArray();
        for (int i = 0; i < dense.Length; i++)
        {
            Assert.Equal((float)(value[i] * q.GlobalScale), u[i]);
            float product = u[i] * scales[index[i]];
            if (scheme == "nvfp4")
            {
                // value·(s·g) decoded against (value·g)·s: each side two float32 roundings of the same exact product.
                Assert.True(Math.Abs((double)product - dense[i]) <= 2 * TwoRoundings * Math.Abs(dense[i]), $"{i}: {product} vs {dense[i]}");
            }
            else
            {
                Assert.Equal(BitConverter.SingleToUInt32Bits(dense[i]), BitConverter.SingleToUInt32Bits(product));
            }
        }
    }

    [Theory]
    [MemberData(nameof(TunableSchemes))]
    public void Quantized_Backpropagation_MatchesFloat64ReferenceAndCentralDifferences(string scheme)
    {
        QuantizedTensor q = Quantize(scheme);
        CheckGradient(q, q, seed: 17, reference: Reference(q) is var (value, group) ? (value, group, q.GlobalScale) : default);
    }

    /// <summary>
    /// The VJP against (a) Σ_{i in g} value_i·g·G_i in float64 when a reference is given, and (b) central differences
    /// L(θ + h·d) − L(θ − h·d) of L(θ) = Σ G⊙Ŵ(θ) in float64, for several random directions d. Ŵ is linear in θ, so the
    /// difference is exactly ∇L·(θ₊ − θ₋) (θ₊, θ₋ the float32 vectors actually used) up to rounding: of each
    /// element of Ŵ and of the float32 gradient (2⁻²⁴ relative, bounded by 2⁻²³ with the float64 sum's own error).
    /// Elements of Ŵ have at most <see cref="TwoRoundings"/> relative error without a rotation.
    /// </summary>
    /// <remarks>Under a Hadamard rotation of block B an element's error is bounded through its block instead: the stored
    /// products' errors (2⁻²³ relative each) and log₂B + 1 rounded butterfly and scaling stages, each adding at most
    /// 2⁻²³ of the block's 2-norm (the transform is orthonormal, so norms are kept), give
    /// |Σ_block G·δ| ≤ ‖G_block‖₂·(log₂B + 2)·2⁻²³·‖Ŵ_block‖₂ by Cauchy–Schwarz.</remarks>
    internal static void CheckGradient(ITunableTensor tensor, CompressedTensor compressed, int seed,
        (double[] Value, int[] Group, float Global) reference = default, int rotationBlock = 0)
    {
        float[] theta = Parameters(tensor);
        var random = new Random(seed);
        int n = compressed.Rows * compressed.Columns;
        float[] g = [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1))];
        var gradient = new float[theta.Length];
        Array.Fill(gradient, 0.5f);
        tensor.BackpropagateReconstruction(theta, g, gradient);
        for (int k = 0; k < gradient.Length; k++)
        {
            gradient[k] -= 0.5f;                       // the VJP adds to what is there
        }

        if (reference is { Value: { } values, Group: { } groups })
        {
            var exact = new double[theta.Length];
            var magnitude = new double[theta.Length];
            for (int i = 0; i < n; i++)
            {
                exact[groups[i]] += values[i] * reference.Global * g[i];
                magnitude[groups[i]] += Math.Abs(values[i] * reference.Global * g[i]);
            }

            for (int k = 0; k < theta.Length; k++)
            {
                // float32 result of a float64 sum (2⁻²⁴ relative), then the subtraction of 0.5 above (one more rounding
                // of at most half an ulp of 0.5 + |x|): 2⁻²³·(|x| + 1).
                Assert.True(Math.Abs(gradient[k] - exact[k]) <= TwoRoundings * (magnitude[k] + 1), $"θ[{k}]: {gradient[k]} vs {exact[k]}");
            }
        }

        double spread = theta.Length == 0 ? 1 : theta.Average(t => Math.Abs((double)t)) + 1e-3;
        for (int direction = 0; direction < 4; direction++)
        {
            float[] plus = new float[theta.Length], minus = new float[theta.Length];
            for (int k = 0; k < theta.Length; k++)
            {
                double step = 0.05 * spread * (random.NextDouble() * 2 - 1);
                plus[k] = (float)(theta[k] + step);
                minus[k] = (float)(theta[k] - step);
            }

            float[] wPlus = Reconstruct(tensor, compressed, plus), wMinus = Reconstruct(tensor, compressed, minus);
            double difference = 0, bound = 0;
            for (int i = 0; i < n; i++)
            {
                difference += (double)g[i] * wPlus[i] - (double)g[i] * wMinus[i];
                if (rotationBlock == 0)
                {
                    bound += Math.Abs(g[i]) * (Math.Abs(wPlus[i]) + Math.Abs(wMinus[i])) * TwoRoundings;
                }
            }

            for (int start = 0; rotationBlock > 0 && start < n; start += rotationBlock)
            {
                double gNorm = 0, plusNorm = 0, minusNorm = 0;
                for (int i = start; i < start + rotationBlock; i++)
                {
                    gNorm += (double)g[i] * g[i];
                    plusNorm += (double)wPlus[i] * wPlus[i];
                    minusNorm += (double)wMinus[i] * wMinus[i];
                }

                bound += Math.Sqrt(gNorm) * (Math.Log2(rotationBlock) + 2) * TwoRoundings * (Math.Sqrt(plusNorm) + Math.Sqrt(minusNorm));
            }

            double predicted = 0;
            for (int k = 0; k < theta.Length; k++)
            {
                double delta = (double)plus[k] - minus[k];
                predicted += gradient[k] * delta;
                bound += TwoRoundings * (Math.Abs(gradient[k]) + 1) * Math.Abs(delta);
            }

            Assert.True(Math.Abs(difference - predicted) <= bound + 1e-30,
                $"direction {direction}: L(θ₊) − L(θ₋) = {difference}, ∇L·(θ₊ − θ₋) = {predicted}, bound {bound}");
            Assert.True(theta.Length == 0 || Math.Abs(predicted) > 0);
        }
    }

    private static T RoundTrip<T>(CompressedTensor tensor, CompressedTensorSerializer serializer)
        where T : CompressedTensor
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        serializer.Write(writer, "layer", tensor);
        writer.Save(folder.File("t.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("t.safetensors"));
        return Assert.IsType<T>(serializer.Read(checkpoint, "layer"));
    }

    [Theory]
    [MemberData(nameof(AllSchemes))]
    public void Quantized_WithOwnParameters_ReproducesTheTensorExactly(string scheme)
    {
        QuantizedTensor q = Quantize(scheme);
        var back = Assert.IsType<QuantizedTensor>(q.WithTunableParameters(Parameters(q)));
        Assert.Equal(q.Kind, back.Kind);
        Assert.Equal(q.Format, back.Format);
        Assert.Equal(q.Granularity, back.Granularity);
        Assert.Equal(q.ScaleEncoding, back.ScaleEncoding);
        Assert.Equal(q.GlobalScale, back.GlobalScale);
        Assert.Equal(q.UnpackCodes(), back.UnpackCodes());
        Assert.Equal(q.ZeroPoints.ToArray(), back.ZeroPoints.ToArray());
        Assert.Equal(q.Scales.ToArray(), back.Scales.ToArray());
        Assert.Equal(q.StorageBits, back.StorageBits);
        AssertBitwiseEqual(Decompressed(q), Decompressed(back));
        var read = RoundTrip<QuantizedTensor>(back, QuantizedTensor.Register(CompressedTensorSerializer.Default));
        Assert.Equal(q.UnpackCodes(), read.UnpackCodes());
        Assert.Equal(q.Scales.ToArray(), read.Scales.ToArray());
        AssertBitwiseEqual(Decompressed(q), Decompressed(read));
    }

    /// <summary>The nearest value of a storage type, from a list of all its positive values (ties to the even code).</summary>
    private static float NearestOf(float x, float[] grid)
    {
        int best = 0;
        for (int k = 1; k < grid.Length; k++)
        {
            double d = Math.Abs((double)grid[k] - x), e = Math.Abs((double)grid[best] - x);
            if (d < e || (d == e && k % 2 == 0))
            {
                best = k;
            }
        }

        return grid[best];
    }

    private static readonly float[] E4M3Grid = [.. Enumerable.Range(0, 0x7F).Select(c => MiniFloatCodec.Fp8E4M3.Decode((byte)c))];

    /// <summary>θ rounded to the encoding: FP8 E4M3 by search over every code (saturating at 448, the NVFP4 rule);
    /// Float16 and BFloat16 by the conversions Core's exhaustive and FsCheck tests hold to a float64 reference.</summary>
    private static float RoundReference(float x, ScaleEncoding encoding) => encoding switch
    {
        ScaleEncoding.Float16 => (float)(Half)x,
        ScaleEncoding.BFloat16 => (float)(BFloat16)x,
        ScaleEncoding.Fp8E4M3 => NearestOf(Math.Min(x, 448f), E4M3Grid),
        _ => x,
    };

    [Theory]
    [MemberData(nameof(TunableSchemes))]
    public void Quantized_WithPerturbedParameters_KeepsCodesAndRoundsScalesToStorage(string scheme)
    {
        QuantizedTensor q = Quantize(scheme);
        float[] theta = Parameters(q);
        var random = new Random(23);
        float[] perturbed = [.. theta.Select(t => t * (float)(1 + 0.3 * (random.NextDouble() * 2 - 1)))];
        var tuned = Assert.IsType<QuantizedTensor>(q.WithTunableParameters(perturbed));
        QuantizedTensor viaScales = q.WithScales(perturbed);
        Assert.Equal(q.UnpackCodes(), tuned.UnpackCodes());
        Assert.Equal(q.ZeroPoints.ToArray(), tuned.ZeroPoints.ToArray());
        Assert.Equal(q.GlobalScale, tuned.GlobalScale);
        float[] expectedScales = [.. perturbed.Select(t => RoundReference(t, q.ScaleEncoding))];
        Assert.Equal(expectedScales, tuned.Scales.ToArray());
        Assert.Equal(expectedScales, viaScales.Scales.ToArray());
        Assert.NotEqual(q.Scales.ToArray(), tuned.Scales.ToArray());
        AssertBitwiseEqual(ReferenceReconstruction(q, expectedScales), Decompressed(tuned));
        AssertBitwiseEqual(Decompressed(tuned), Reconstruct(q, q, expectedScales));
        var read = RoundTrip<QuantizedTensor>(tuned, QuantizedTensor.Register(CompressedTensorSerializer.Default));
        Assert.Equal(expectedScales, read.Scales.ToArray());
        AssertBitwiseEqual(Decompressed(tuned), Decompressed(read));
    }

    [Theory]
    [MemberData(nameof(TunableSchemes))]
    public void Quantized_BadSpans_Throw(string scheme)
    {
        QuantizedTensor q = Quantize(scheme);
        float[] theta = Parameters(q);
        int n = q.Rows * q.Columns;
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => q.GetTunableParameters(new float[theta.Length + 1])).ParamName);
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => q.Reconstruct(new float[theta.Length - 1], new float[n])).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => q.Reconstruct(theta, new float[n - 1])).ParamName);
        Assert.Equal("weightGradient", Assert.Throws<ArgumentException>(() => q.BackpropagateReconstruction(theta, new float[n + 1], new float[theta.Length])).ParamName);
        Assert.Equal("parameterGradient", Assert.Throws<ArgumentException>(() => q.BackpropagateReconstruction(theta, new float[n], new float[1 + theta.Length])).ParamName);
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => q.WithTunableParameters(new float[theta.Length + 1])).ParamName);
        Assert.Equal("scales", Assert.Throws<ArgumentException>(() => q.WithScales(new float[theta.Length - 1])).ParamName);
        int positive = Array.FindIndex(theta, t => t > 0);
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, -1e-3f, 0f })
        {
            float[] broken = (float[])theta.Clone();
            broken[positive] = bad;
            ArgumentException e = Assert.Throws<ArgumentException>(() => q.WithTunableParameters(broken));
            Assert.Equal("parameters", e.ParamName);
            Assert.Contains($"Scale {positive}", e.Message, StringComparison.Ordinal);
            Assert.Equal("scales", Assert.Throws<ArgumentException>(() => q.WithScales(broken)).ParamName);
        }

        if (q.ScaleEncoding == ScaleEncoding.Float16)
        {
            float[] overflow = (float[])theta.Clone();
            overflow[positive] = 1e6f;                 // above Half.MaxValue (65504)
            Assert.Throws<ArgumentException>(() => q.WithScales(overflow));
        }

        if (q.ScaleEncoding is ScaleEncoding.Float16 or ScaleEncoding.Fp8E4M3)
        {
            float[] underflow = (float[])theta.Clone();
            underflow[positive] = 1e-12f;              // below the smallest subnormal: would store a 0 scale
            Assert.Throws<ArgumentException>(() => q.WithScales(underflow));
        }
    }

    [Theory]
    [InlineData("mxfp4")]
    [InlineData("nf4")]
    public void Quantized_PowerOfTwoAndDoubleQuantizedScales_HaveNoParameters(string scheme)
    {
        QuantizedTensor q = Quantize(scheme);
        Assert.Equal(0, q.TunableParameterCount);
        Assert.Same(q, q.WithTunableParameters([]));
        var gradient = Array.Empty<float>();
        q.BackpropagateReconstruction([], new float[q.Rows * q.Columns], gradient);
        Assert.Throws<InvalidOperationException>(() => q.WithScales(q.Scales.Span));
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => q.WithTunableParameters(new float[1])).ParamName);
    }

    [Property(MaxTest = 200)]
    public bool Quantized_IntegerReconstruction_EqualsReferenceAtAnyScales(int seed, PositiveInt bits, bool symmetric, PositiveInt granularity, PositiveInt rows, PositiveInt columns)
    {
        int r = rows.Get % 9 + 1, c = columns.Get % 70 + 1;
        Granularity g = (granularity.Get % 4) switch
        {
            0 => Granularity.PerTensor,
            1 => Granularity.PerChannel,
            2 => Granularity.PerGroup(Math.Min(c, granularity.Get % 17 + 1)),
            _ => Granularity.PerBlock(Math.Min(r, granularity.Get % 3 + 1), Math.Min(c, granularity.Get % 13 + 1)),
        };
        DenseTensor w = RandomData.GaussianMatrix(r, c, seed, (float)Math.Pow(10, Math.Abs(seed % 5) - 2));
        QuantizedTensor q = new RtnOptions { Format = NumberFormat.Int(bits.Get % 7 + 2), Granularity = g, Symmetric = symmetric }.CreateCompressor().Quantize(w);
        var random = new Random(seed);
        float[] theta = [.. Enumerable.Range(0, q.TunableParameterCount).Select(_ => (float)random.NextDouble())];
        float[] actual = Reconstruct(q, q, theta), expected = ReferenceReconstruction(q, theta);
        float[] own = Reconstruct(q, q, Parameters(q)), dense = Decompressed(q);
        return actual.Select(BitConverter.SingleToUInt32Bits).SequenceEqual(expected.Select(BitConverter.SingleToUInt32Bits))
            && own.Select(BitConverter.SingleToUInt32Bits).SequenceEqual(dense.Select(BitConverter.SingleToUInt32Bits));
    }

    // ---- GPTQ: the quantized tensor's θ through the column permutation, a prior mask, or a Hadamard rotation. ----

    private static readonly RtnOptions Int4G32 = new() { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32) };

    private static readonly Dictionary<string, GptqOptions> GptqSchemes = new()
    {
        ["int4-g32-act-order"] = new GptqOptions { Quantization = Int4G32, ActOrder = true },
        ["int4-g32-asym-act-order-masked"] = new GptqOptions { Quantization = Int4G32 with { Symmetric = false }, ActOrder = true },
        ["fp8-per-channel"] = new GptqOptions { Quantization = RtnOptions.Fp8PerChannel },
        ["nvfp4-act-order-masked"] = new GptqOptions { Quantization = RtnOptions.Nvfp4, ActOrder = true },
        ["nvfp4-rotated"] = new GptqOptions { Quantization = RtnOptions.Nvfp4, ActOrder = true, Rotation = new HadamardRotationParameters(16, 5) },
        ["int4-g32-rotated"] = new GptqOptions { Quantization = Int4G32, Rotation = new HadamardRotationParameters(64, 9) },
        ["mxfp4-rotated"] = new GptqOptions { Quantization = RtnOptions.Mxfp4, Rotation = new HadamardRotationParameters(32) },
    };

    public static TheoryData<string> GptqCases() => [.. GptqSchemes.Keys];

    private static GptqTensor QuantizeGptq(string scheme)
    {
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 31, standardDeviation: 0.05f);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 2 * Columns, seed: 32);
        CompressionContext context = CompressionContext.Default with { InputHessian = hessian };
        if (scheme.EndsWith("masked", StringComparison.Ordinal))
        {
            var random = new Random(33);
            bool[] keep = [.. Enumerable.Range(0, w.Length).Select(_ => random.NextDouble() < 0.5)];
            var prior = new PrunedTensor(w, SparsityMask.FromPredicate(Rows, Columns, keep, static (k, i) => k[i]));
            w = prior.Decompress();
            context = context with { Prior = prior };
        }

        GptqTensor q = new GptqQuantizer(GptqSchemes[scheme]).Quantize(w, context);
        Assert.True(scheme.Contains("act-order", StringComparison.Ordinal) == !q.IsIdentityOrder || scheme.Contains("rotated", StringComparison.Ordinal));
        return q;
    }

    /// <summary>The quantized tensor's reference moved to the original column order.</summary>
    private static (double[] Value, int[] Group, float Global) GptqReference(GptqTensor q)
    {
        (double[] value, int[] group) = Reference(q.Quantized);
        var v = new double[value.Length];
        var g = new int[group.Length];
        for (int r = 0; r < q.Rows; r++)
        {
            for (int k = 0; k < q.Columns; k++)
            {
                v[r * q.Columns + q.Permutation[k]] = value[r * q.Columns + k];
                g[r * q.Columns + q.Permutation[k]] = group[r * q.Columns + k];
            }
        }

        return (v, g, q.Quantized.GlobalScale);
    }

    [Theory]
    [MemberData(nameof(GptqCases))]
    public void Gptq_ReconstructWithOwnParameters_EqualsDecompressBitForBit(string scheme)
    {
        GptqTensor q = QuantizeGptq(scheme);
        Assert.Equal(scheme == "mxfp4-rotated" ? 0 : q.Quantized.Scales.Length, q.TunableParameterCount);
        AssertBitwiseEqual(Decompressed(q), Reconstruct(q, q, Parameters(q)));
    }

    [Theory]
    [MemberData(nameof(GptqCases))]
    public void Gptq_Backpropagation_MatchesReferenceAndCentralDifferences(string scheme)
    {
        GptqTensor q = QuantizeGptq(scheme);
        if (q.Rotation is null)
        {
            CheckGradient(q, q, seed: 41, GptqReference(q));
        }
        else
        {
            CheckGradient(q, q, seed: 41, rotationBlock: q.Rotation.BlockSize);
        }
    }

    [Theory]
    [MemberData(nameof(GptqCases))]
    public void Gptq_WithOwnParameters_ReproducesTheTensorExactly(string scheme)
    {
        GptqTensor q = QuantizeGptq(scheme);
        var back = Assert.IsType<GptqTensor>(q.WithTunableParameters(Parameters(q)));
        Assert.Equal(q.Permutation, back.Permutation);
        Assert.Equal(q.Rotation, back.Rotation);
        Assert.Same(q.SparsityMask, back.SparsityMask);
        Assert.Same(q.Report, back.Report);
        Assert.Equal(q.Quantized.UnpackCodes(), back.Quantized.UnpackCodes());
        Assert.Equal(q.Quantized.Scales.ToArray(), back.Quantized.Scales.ToArray());
        Assert.Equal(q.StorageBits, back.StorageBits);
        AssertBitwiseEqual(Decompressed(q), Decompressed(back));
        var read = RoundTrip<GptqTensor>(back, GptqTensor.Register(CompressedTensorSerializer.Default));
        Assert.Equal(q.Permutation, read.Permutation);
        Assert.Equal(q.SparsityMask?.ToBytes(), read.SparsityMask?.ToBytes());
        AssertBitwiseEqual(Decompressed(q), Decompressed(read));
    }

    [Theory]
    [MemberData(nameof(GptqCases))]
    public void Gptq_WithPerturbedParameters_KeepsCodesMaskAndPermutation(string scheme)
    {
        GptqTensor q = QuantizeGptq(scheme);
        float[] theta = Parameters(q);
        var random = new Random(43);
        float[] perturbed = [.. theta.Select(t => t * (float)(1 + 0.3 * (random.NextDouble() * 2 - 1)))];
        var tuned = Assert.IsType<GptqTensor>(q.WithTunableParameters(perturbed));
        Assert.Equal(q.Quantized.UnpackCodes(), tuned.Quantized.UnpackCodes());
        Assert.Equal(q.Permutation, tuned.Permutation);
        Assert.Same(q.SparsityMask, tuned.SparsityMask);
        float[] rounded = [.. perturbed.Select(t => RoundReference(t, q.Quantized.ScaleEncoding))];
        Assert.Equal(theta.Length == 0 ? q.Quantized.Scales.ToArray() : rounded, tuned.Quantized.Scales.ToArray());
        float[] dense = Decompressed(tuned);
        AssertBitwiseEqual(dense, Reconstruct(q, q, rounded));
        if (q.SparsityMask is SparsityMask mask)
        {
            for (int i = 0; i < dense.Length; i++)
            {
                Assert.True(mask.IsKept(i / Columns, i % Columns) || BitConverter.SingleToUInt32Bits(dense[i]) == 0, $"pruned weight {i} is {dense[i]}");
            }
        }

        if (q.Rotation is null)
        {
            (double[] value, int[] group, float global) = GptqReference(q);
            for (int i = 0; i < dense.Length; i++)
            {
                Assert.Equal((float)(value[i] * (float)((double)rounded[group[i]] * global)), dense[i]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(GptqCases))]
    public void Gptq_ScaleHelpers_FollowTheOriginalColumnOrder_OrRefuseARotation(string scheme)
    {
        GptqTensor q = QuantizeGptq(scheme);
        if (q.Rotation is not null)
        {
            Assert.Throws<InvalidOperationException>(() => q.UnscaledValues());
            Assert.Throws<InvalidOperationException>(() => q.ScaleIndex());
            Assert.Throws<InvalidOperationException>(() => q.WithScales(q.Quantized.Scales.Span));
            return;
        }

        float[] u = q.UnscaledValues(), dense = Decompressed(q), scales = q.Quantized.Scales.ToArray();
        int[] index = q.ScaleIndex();
        (double[] value, int[] group, float global) = GptqReference(q);
        Assert.Equal(group, index);
        for (int i = 0; i < dense.Length; i++)
        {
            Assert.Equal((float)(value[i] * global), u[i]);
            double product = u[i] * scales[index[i]];
            // Exact but for NVFP4, whose two products are taken in the other order (see the quantized test).
            Assert.True(Math.Abs(product - dense[i]) <= 2 * TwoRoundings * Math.Abs(dense[i]), $"{i}: {product} vs {dense[i]}");
            if (global == 1f)
            {
                Assert.Equal(BitConverter.SingleToUInt32Bits(dense[i]), BitConverter.SingleToUInt32Bits(u[i] * scales[index[i]]));
            }
        }

        float[] doubled = [.. scales.Select(s => 2 * s)];
        GptqTensor rescaled = q.WithScales(doubled);
        Assert.Equal(q.Permutation, rescaled.Permutation);
        Assert.Same(q.Report, rescaled.Report);
        Assert.Same(q.SparsityMask, rescaled.SparsityMask);
        Assert.Equal("scales", Assert.Throws<ArgumentException>(() => q.WithScales(doubled.AsSpan(1))).ParamName);
    }
}
