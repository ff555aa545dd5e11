using Compression.Quantization.Formats;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests;

public class RoundToNearestTests
{
    public static TheoryData<string> FormatNames() => new(NumberFormat.All.Select(f => f.Name));

    private static QuantizedTensor Quantize(DenseTensor w, RtnOptions options) => options.CreateCompressor().Quantize(w);

    [Theory]
    [InlineData(8, true)]
    [InlineData(4, true)]
    [InlineData(3, true)]
    [InlineData(2, true)]
    [InlineData(8, false)]
    [InlineData(4, false)]
    [InlineData(2, false)]
    public void Integer_ErrorIsAtMostHalfAStep_AndRequantizingIsIdempotent(int bits, bool symmetric)
    {
        foreach (Granularity granularity in new[] { Granularity.PerTensor, Granularity.PerChannel, Granularity.PerGroup(16), Granularity.PerGroup(7), Granularity.PerBlock(3, 5) })
        {
            DenseTensor w = RandomData.GaussianMatrix(9, 37, seed: bits * 10 + (symmetric ? 1 : 0));
            var options = new RtnOptions { Format = NumberFormat.Int(bits), Granularity = granularity, Symmetric = symmetric };
            QuantizedTensor q = Quantize(w, options);
            DenseTensor dq = q.Decompress();
            var layout = new ScaleLayout(granularity, 9, 37);
            for (int r = 0; r < 9; r++)
            {
                for (int s = 0; s < layout.SegmentsPerRow; s++)
                {
                    (int start, int length) = layout.Segment(s);
                    float scale = q.Scales.Span[layout.GroupOf(r, s)];
                    for (int c = start; c < start + length; c++)
                    {
                        // The range covers the group, so every weight is in range: |x − dq| ≤ s/2, plus rounding of
                        // the product (code − zero)·s in float32 (one ulp of the result).
                        float error = MathF.Abs(w[r, c] - dq[r, c]);
                        Assert.True(error <= scale / 2 * (1 + 1e-6f) + MathF.Abs(dq[r, c]) * 1.2e-7f,
                            $"{granularity} ({r}, {c}): |{w[r, c]} − {dq[r, c]}| = {error} > {scale / 2}");
                    }
                }
            }

            // q(dq(q(x))) = q(x): re-quantizing the reconstruction with the same scales gives the same codes.
            QuantizedTensor again = Quantize(dq, options);
            Assert.Equal(q.UnpackCodes(), again.UnpackCodes());
        }
    }

    [Theory]
    [MemberData(nameof(FormatNames))]
    public void EveryFormat_RoundTripsThroughSerialization_BitForBit(string name)
    {
        NumberFormat format = NumberFormat.FromName(name);
        DenseTensor w = RandomData.GaussianMatrix(11, 70, seed: name.GetHashCode(StringComparison.Ordinal) & 0xFFFF, standardDeviation: 0.05f);
        QuantizedTensor q = Quantize(w, new RtnOptions { Format = format });
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        CompressedTensorSerializer serializer = QuantizedTensor.Register(CompressedTensorSerializer.Default);
        serializer.Write(writer, "layer", q);
        writer.Save(folder.File("q.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("q.safetensors"));
        var back = Assert.IsType<QuantizedTensor>(serializer.Read(checkpoint, "layer"));
        Assert.Equal(q.StorageBits, back.StorageBits);
        Assert.Equal(q.UnpackCodes(), back.UnpackCodes());
        Assert.True(back.Decompress().BitwiseEquals(q.Decompress()));
    }

    [Theory]
    [MemberData(nameof(FormatNames))]
    public void EveryFormat_MeetsAnSqnrFloor_AndKeepsZeroRowsExact(string name)
    {
        NumberFormat format = NumberFormat.FromName(name);
        DenseTensor w = RandomData.GaussianMatrix(16, 256, seed: 3);
        w.Row(5).Clear();                                                       // an all-zero row: scale 0, no NaN
        QuantizedTensor q = Quantize(w, new RtnOptions { Format = format });
        DenseTensor dq = q.Decompress();
        Assert.All(dq.Row(5).ToArray(), v => Assert.Equal(0f, v));
        Assert.All(dq.Span.ToArray(), v => Assert.True(float.IsFinite(v)));
        double signal = w.Span.ToArray().Sum(v => (double)v * v);
        double noise = w.Span.ToArray().Select((v, i) => (double)(v - dq.Span[i]) * (v - dq.Span[i])).Sum();
        double sqnr = 10 * Math.Log10(signal / noise);
        // Floors: ~6 dB per integer bit minus the Gaussian's crest factor; FP formats by mantissa bits; ternary and
        // 2-bit formats only need to beat the trivial all-zero reconstruction (0 dB) by a margin.
        double floor = name switch
        {
            "int8" or "mxint8" => 35, "int7" => 30, "int6" => 24, "int5" => 18, "int4" => 12, "int3" => 6, "int2" => 1,
            "fp8-e4m3" or "mxfp8-e4m3" => 25, "fp8-e5m2" or "mxfp8-e5m2" => 18, "fp6-e2m3" or "mxfp6-e2m3" => 16,
            "fp6-e3m2" or "mxfp6-e3m2" => 14, "fp4-e2m1" or "mxfp4" or "nvfp4" or "nf4" => 8, _ => 2,
        };
        Assert.True(sqnr >= floor, $"{name}: SQNR {sqnr:F1} dB < {floor} dB");
    }

    [Theory]
    [MemberData(nameof(FormatNames))]
    public void BitsPerWeight_CountsCodesAndScales(string name)
    {
        NumberFormat format = NumberFormat.FromName(name);
        QuantizedTensor q = Quantize(RandomData.GaussianMatrix(64, 512, seed: 1), new RtnOptions { Format = format });
        double expected = name switch
        {
            "nvfp4" => 4 + 8.0 / 16 + 32.0 / (64 * 512),
            "mxfp4" => 4 + 8.0 / 32,
            "mxint8" or "mxfp8-e4m3" or "mxfp8-e5m2" => 8 + 8.0 / 32,
            "mxfp6-e2m3" or "mxfp6-e3m2" => 6 + 8.0 / 32,
            "nf4" => 4 + (8.0 + 32.0 / 256) / 64 + 32.0 / (64 * 512),
            "ternary-absmean" or "ternary-twn" => 8.0 * TernaryBytes(512) / 512 + 32.0 / 512,
            _ => format.ElementBits + 32.0 / 512,                               // per-channel float32 scale
        };
        Assert.Equal(expected, q.BitsPerWeight, 9);
    }

    private static int TernaryBytes(int columns) => (columns + 4) / 5;

    [Fact]
    public void Mx_ScaleIsThePowerOfTwoTheSpecPrescribes()
    {
        // Block absmax 5.0 (floor log2 = 2): E2M1 emax = 2 → X = 2^0; E4M3 emax = 8 → X = 2^-6; INT8 emax 0 → X = 2^2.
        float[] row = Enumerable.Range(0, 32).Select(i => i == 3 ? -5f : (i - 16) * 0.1f).ToArray();
        DenseTensor w = DenseTensor.FromValues(row, 1, 32);
        Assert.Equal(1f, Quantize(w, RtnOptions.Mxfp4).Scales.Span[0]);
        Assert.Equal(1f / 64, Quantize(w, new RtnOptions { Format = NumberFormat.Mxfp8E4M3 }).Scales.Span[0]);
        Assert.Equal(4f, Quantize(w, new RtnOptions { Format = NumberFormat.Mxint8 }).Scales.Span[0]);
        DenseTensor dq = Quantize(w, RtnOptions.Mxfp4).Decompress();
        Assert.Equal(-4f, dq[0, 3]);                                            // 5 / 1 → E2M1 rounds to 4 (ties none)
        Assert.Equal(E8M0.NaN, E8M0.Encode(float.NaN));
        Assert.Equal(127, E8M0.Encode(1f));
        Assert.Equal(0, E8M0.Encode(MathF.ScaleB(1, -127)));
        Assert.Equal(-127, E8M0.SharedExponent(0f, 2));
    }

    [Fact]
    public void Nvfp4_FollowsTheRecipe()
    {
        DenseTensor w = RandomData.GaussianMatrix(4, 64, seed: 9);
        QuantizedTensor q = Quantize(w, RtnOptions.Nvfp4);
        float amax = w.Span.ToArray().Max(MathF.Abs);
        Assert.Equal(amax / (448f * 6f), q.GlobalScale);
        byte[] codes = q.UnpackCodes();
        for (int r = 0; r < 4; r++)
        {
            for (int b = 0; b < 4; b++)
            {
                float blockMax = Enumerable.Range(16 * b, 16).Max(c => MathF.Abs(w[r, c]));
                float expectedScale = MiniFloatCodec.Fp8E4M3.RoundToGrid(blockMax / (6f * q.GlobalScale));
                Assert.Equal(expectedScale, q.Scales.Span[r * 4 + b]);
                for (int c = 16 * b; c < 16 * b + 16; c++)
                {
                    Assert.Equal(MiniFloatCodec.Fp4E2M1.Encode(w[r, c] / (expectedScale * q.GlobalScale)), codes[r * 64 + c]);
                }
            }
        }
    }

    [Fact]
    public void Nf4_UsesTheQuantileTable_AndDoubleQuantizedConstants()
    {
        DenseTensor w = RandomData.GaussianMatrix(8, 128, seed: 2);
        QuantizedTensor q = Quantize(w, RtnOptions.Nf4);
        Assert.Equal(ScaleEncoding.DoubleQuantizedInt8, q.ScaleEncoding);
        byte[] codes = q.UnpackCodes();
        for (int i = 0; i < codes.Length; i++)
        {
            float scale = q.Scales.Span[i / 64];
            float normalized = w.Span[i] / scale;
            float chosen = Nf4Format.Values[codes[i]];
            Assert.Equal(Nf4Format.Encode(normalized), codes[i]);                // SIMD path = scalar encoder
            foreach (float candidate in Nf4Format.Values)
            {
                Assert.True(MathF.Abs(normalized - chosen) <= MathF.Abs(normalized - candidate) + 1e-6f);
            }
        }

        for (int g = 0; g < 16; g++)
        {
            float absmax = Enumerable.Range(64 * g, 64).Max(i => MathF.Abs(w.Span[i]));
            Assert.True(MathF.Abs(q.Scales.Span[g] - absmax) <= absmax * 0.02f, $"group {g}: {q.Scales.Span[g]} vs {absmax}");
        }
    }

    [Fact]
    public void Ternary_AbsMeanAndThreshold_FollowTheirDefinitions()
    {
        DenseTensor w = DenseTensor.FromValues([0.1f, -0.9f, 0.5f, -0.05f, 0.0f, 2.0f], 1, 6);
        QuantizedTensor absmean = Quantize(w, new RtnOptions { Format = NumberFormat.TernaryAbsMean });
        float gamma = (0.1f + 0.9f + 0.5f + 0.05f + 0f + 2f) / 6;
        Assert.Equal(gamma, absmean.Scales.Span[0], 6);
        Assert.Equal([1, 0, 2, 1, 1, 2], absmean.UnpackCodes());                // round(w/γ) clamped, +1

        QuantizedTensor twn = Quantize(w, new RtnOptions { Format = NumberFormat.TernaryThreshold });
        // Δ = 0.7·γ ≈ 0.414: kept |w| are 0.9, 0.5, 2.0 → α = 1.1333.
        Assert.Equal((0.9f + 0.5f + 2.0f) / 3, twn.Scales.Span[0], 5);
        Assert.Equal([1, 0, 2, 1, 1, 2], twn.UnpackCodes());
    }

    [Fact]
    public void ScaleStorage_Half_IsExactAsStored()
    {
        DenseTensor w = RandomData.GaussianMatrix(5, 64, seed: 4);
        QuantizedTensor q = Quantize(w, RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32), ScaleStorage = ScaleEncoding.Float16 });
        Assert.All(q.Scales.ToArray(), s => Assert.Equal(s, (float)(Half)s));
        Assert.Equal(4 + 16.0 / 32, q.BitsPerWeight, 9);
    }

    [Fact]
    public void ClippingSearch_NeverIncreasesTheError()
    {
        DenseTensor w = RandomData.GaussianMatrix(8, 128, seed: 6);
        w[2, 3] = 9f;                                                           // an outlier the search should clip
        foreach (bool symmetric in new[] { true, false })
        {
            var plain = new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(64), Symmetric = symmetric };
            double Error(RtnOptions o)
            {
                DenseTensor dq = Quantize(w, o).Decompress();
                return w.Span.ToArray().Select((v, i) => Math.Pow(Math.Abs(v - dq.Span[i]), 2.4)).Sum();
            }

            Assert.True(Error(plain with { Clipping = ClippingSearch.Default }) <= Error(plain) * (1 + 1e-9));
        }
    }

    [Fact]
    public void PruneThenQuantize_KeepsZerosZero()
    {
        DenseTensor w = RandomData.GaussianMatrix(6, 40, seed: 8);
        for (int i = 0; i < w.Length; i += 3)
        {
            w.Span[i] = 0;
        }

        foreach (NumberFormat format in NumberFormat.All)
        {
            DenseTensor dq = Quantize(w, new RtnOptions { Format = format }).Decompress();
            for (int i = 0; i < w.Length; i += 3)
            {
                Assert.True(dq.Span[i] == 0, $"{format}: element {i} reads {dq.Span[i]}");
            }
        }
    }

    [Property(MaxTest = 60)]
    public bool Int8PerChannel_IsSignSymmetric(PositiveInt r, PositiveInt c, int seed)
    {
        DenseTensor w = RandomData.GaussianMatrix(r.Get % 8 + 1, c.Get % 100 + 1, seed);
        DenseTensor negated = DenseTensor.FromValues(w.Span.ToArray().Select(v => -v).ToArray(), w.Rows, w.Columns);
        float[] a = Quantize(w, RtnOptions.W8PerChannel).Decompress().Span.ToArray();
        float[] b = Quantize(negated, RtnOptions.W8PerChannel).Decompress().Span.ToArray();
        return a.Zip(b).All(p => p.First == -p.Second);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void NonFiniteWeights_AreRejected_ForEveryFormat(float bad)
    {
        DenseTensor w = RandomData.GaussianMatrix(3, 32, seed: 1);
        w[1, 7] = bad;
        foreach (NumberFormat format in NumberFormat.All)
        {
            ArgumentException e = Assert.Throws<ArgumentException>("weight", () => new RtnOptions { Format = format }.CreateCompressor().Compress(w, CompressionContext.Default));
            Assert.Contains("(1, 7)", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void BadOptions_GiveClearExceptions()
    {
        DenseTensor w = RandomData.GaussianMatrix(4, 64, seed: 1);
        Assert.Throws<ArgumentOutOfRangeException>("bits", () => NumberFormat.Int(1));
        Assert.Throws<ArgumentOutOfRangeException>("bits", () => NumberFormat.Int(9));
        Assert.Throws<ArgumentOutOfRangeException>("size", () => Granularity.PerGroup(0));
        Assert.Throws<ArgumentOutOfRangeException>("size", () => Granularity.PerGroup(-4));
        Assert.Throws<ArgumentException>("Granularity", () => new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(128) }.CreateCompressor().Compress(w, CompressionContext.Default));
        Assert.Throws<ArgumentException>("options", () => new RtnOptions { Format = NumberFormat.Fp8E4M3, Symmetric = false }.CreateCompressor().Compress(w, CompressionContext.Default));
        Assert.Throws<ArgumentException>("options", () => new RtnOptions { Format = NumberFormat.Mxfp4, Granularity = Granularity.PerChannel }.CreateCompressor().Compress(w, CompressionContext.Default));
        Assert.Throws<ArgumentException>("options", () => new RtnOptions { Format = NumberFormat.Nf4, Clipping = ClippingSearch.Default }.CreateCompressor().Compress(w, CompressionContext.Default));
        Assert.Throws<ArgumentException>("options", () => new RtnOptions { Format = NumberFormat.TernaryAbsMean, Clipping = ClippingSearch.Default }.CreateCompressor().Compress(w, CompressionContext.Default));
        Assert.Throws<ArgumentOutOfRangeException>("ScaleStorage", () => new RtnOptions { ScaleStorage = ScaleEncoding.E8M0 });
        Assert.Throws<ArgumentOutOfRangeException>("MaxShrink", () => new ClippingSearch { MaxShrink = 1.5 });
        Assert.Throws<ArgumentNullException>("Format", () => new RtnOptions { Format = null! });
        Assert.Throws<ArgumentException>("name", () => NumberFormat.FromName("fp5"));
    }

    [Fact]
    public void EmptyMatrices_Quantize()
    {
        foreach (NumberFormat format in NumberFormat.All)
        {
            QuantizedTensor q = Quantize(new DenseTensor(0, 64), new RtnOptions { Format = format });
            Assert.Equal(0, q.ElementCount);
            Assert.Empty(q.Decompress().Span.ToArray());
        }
    }
}
