using System.Numerics.Tensors;
using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>The ILGPU kernels on ILGPU's CPU simulator (CI has no GPU) against the CPU quantizer: equal bit for bit.
/// The same comparison runs on a real GPU in benchmarks/Compression.GpuBench.</summary>
[Collection("Gpu")]
public sealed class GpuQuantizerTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public static TheoryData<string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (string format in new[] { "int8", "int4", "int3", "int2", "fp8-e4m3", "fp8-e5m2", "fp6-e2m3", "fp6-e3m2", "fp4-e2m1" })
        {
            data.Add(format, "per-channel", true);
            data.Add(format, "group-32", true);
            if (format is "int4" or "int8" or "fp8-e4m3" or "fp4-e2m1")
            {
                data.Add(format, "group-128", true);
                data.Add(format, "group-64", true);
                data.Add(format, "group-16", true);
            }

            if (format.StartsWith("int", StringComparison.Ordinal))
            {
                data.Add(format, "group-13", false);
            }
        }

        foreach (string format in new[] { "mxfp8-e4m3", "mxfp8-e5m2", "mxfp6-e2m3", "mxfp6-e3m2", "mxfp4", "mxint8", "nvfp4" })
        {
            data.Add(format, "default", true);
        }

        return data;
    }

    [Fact]
    public void Simulator_HasFullWidthWarps() => Assert.Equal(32, _gpu.Accelerator.WarpSize);

    [Theory]
    [MemberData(nameof(Cases))]
    public void GpuKernels_EqualTheCpuQuantizer(string formatName, string granularityName, bool symmetric)
    {
        var options = new RtnOptions
        {
            Format = NumberFormat.FromName(formatName),
            Granularity = granularityName == "default" ? null : GranularityNames.Parse(granularityName),
            Symmetric = symmetric,
        };
        // 77 columns: the per-group and per-byte kernels; 64 and 256 columns: the bandwidth kernels (quads per thread
        // for per-channel scales, sixteen weights per thread for groups of 16 to 128).
        foreach (int columns in new[] { 77, 64, 256 })
        {
            if (options.EffectiveGranularity is PerGroupGranularity { Size: int size } && size > columns)
            {
                continue;
            }

            DenseTensor w = RandomData.GaussianMatrix(7, columns, seed: formatName.Length + granularityName.Length + columns);
            w.Row(3).Clear();
            for (int i = 0; i < w.Length; i += 11)
            {
                w.Span[i] *= 25f;
            }

            QuantizedTensor cpu = options.CreateCompressor().Quantize(w);
            var quantizer = new GpuRoundToNearestQuantizer(_gpu, options);
            QuantizedTensor gpu = quantizer.Quantize(w);

            Assert.Equal(cpu.Scales.ToArray().Select(BitConverter.SingleToInt32Bits), gpu.Scales.ToArray().Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(cpu.ZeroPoints.ToArray(), gpu.ZeroPoints.ToArray());
            Assert.Equal(BitConverter.SingleToInt32Bits(cpu.GlobalScale), BitConverter.SingleToInt32Bits(gpu.GlobalScale));
            Assert.Equal(cpu.PackedCodes.ToArray(), gpu.PackedCodes.ToArray());
            Assert.True(quantizer.Dequantize(cpu).BitwiseEquals(cpu.Decompress()));
        }
    }

    /// <summary>Options the general kernels run: a name for the test list and the options themselves.</summary>
    public static TheoryData<string> GeneralCases()
    {
        var data = new TheoryData<string>();
        foreach (string name in GeneralOptions.Keys)
        {
            data.Add(name);
        }

        return data;
    }

    private static readonly Dictionary<string, RtnOptions> GeneralOptions = BuildGeneralOptions();

    private static Dictionary<string, RtnOptions> BuildGeneralOptions()
    {
        var cases = new Dictionary<string, RtnOptions>();
        Granularity[] multiRow = [Granularity.PerTensor, Granularity.PerBlock(4, 32), Granularity.PerBlock(3, 20)];
        foreach (string format in new[] { "int8", "int4", "int3", "int2" })
        {
            foreach (Granularity granularity in multiRow)
            {
                var options = new RtnOptions { Format = NumberFormat.FromName(format), Granularity = granularity };
                cases[$"{format} {granularity} restricted"] = options;
                cases[$"{format} {granularity} full"] = options with { SymmetricRange = SymmetricRange.Full };
                cases[$"{format} {granularity} asym"] = options with { Symmetric = false };
            }
        }

        foreach (string format in new[] { "fp8-e4m3", "fp8-e5m2", "fp6-e2m3", "fp6-e3m2", "fp4-e2m1" })
        {
            foreach (Granularity granularity in multiRow)
            {
                cases[$"{format} {granularity}"] = new RtnOptions { Format = NumberFormat.FromName(format), Granularity = granularity };
            }

            // FP16 scales of tiny rows round far down (subnormal FP16), so x / s overflows the element format.
            var perChannel = new RtnOptions { Format = NumberFormat.FromName(format), Granularity = Granularity.PerChannel };
            cases[$"{format} per-channel non-saturating fp16"] = perChannel with { Saturate = false, ScaleStorage = ScaleEncoding.Float16 };
            cases[$"{format} group-32 non-saturating"] = perChannel with { Saturate = false, Granularity = Granularity.PerGroup(32) };
            cases[$"{format} block-3x20 non-saturating bf16"] = perChannel with { Saturate = false, Granularity = Granularity.PerBlock(3, 20), ScaleStorage = ScaleEncoding.BFloat16 };
        }

        foreach (ScaleEncoding storage in new[] { ScaleEncoding.Float16, ScaleEncoding.BFloat16 })
        {
            cases[$"int4 group-32 {storage}"] = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32), ScaleStorage = storage };
            cases[$"int4 group-13 asym {storage}"] = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(13), Symmetric = false, ScaleStorage = storage };
            cases[$"int8 per-channel {storage}"] = RtnOptions.W8PerChannel with { ScaleStorage = storage };
            cases[$"int8 per-tensor {storage}"] = RtnOptions.W8PerChannel with { Granularity = Granularity.PerTensor, ScaleStorage = storage };
            cases[$"fp8 per-channel {storage}"] = RtnOptions.Fp8PerChannel with { ScaleStorage = storage };
            cases[$"fp8 block {storage}"] = RtnOptions.Fp8Block128 with { Granularity = Granularity.PerBlock(4, 32), ScaleStorage = storage };
        }

        cases["int4 group-32 clipping"] = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32), Clipping = ClippingSearch.Default };
        cases["int3 per-channel asym clipping"] = new RtnOptions { Format = NumberFormat.FromName("int3"), Symmetric = false, Clipping = ClippingSearch.Default };
        cases["int4 block-3x20 asym clipping fp16"] = new RtnOptions
        {
            Format = NumberFormat.Int4, Granularity = Granularity.PerBlock(3, 20), Symmetric = false, Clipping = new ClippingSearch { Grid = 20, Norm = 2 },
            ScaleStorage = ScaleEncoding.Float16,
        };
        cases["int8 per-tensor full clipping"] = RtnOptions.W8PerChannel with
        {
            Granularity = Granularity.PerTensor, SymmetricRange = SymmetricRange.Full, Clipping = new ClippingSearch { Grid = 10, MaxShrink = 0.5 },
        };
        cases["nf4"] = RtnOptions.Nf4;
        foreach (string format in new[] { "ternary-absmean", "ternary-twn" })
        {
            var ternary = new RtnOptions { Format = NumberFormat.FromName(format) };
            cases[$"{format} default"] = ternary;
            cases[$"{format} per-tensor"] = ternary with { Granularity = Granularity.PerTensor };
            cases[$"{format} group-32"] = ternary with { Granularity = Granularity.PerGroup(32) };
            cases[$"{format} block-3x20"] = ternary with { Granularity = Granularity.PerBlock(3, 20) };
            cases[$"{format} group-13 bf16"] = ternary with { Granularity = Granularity.PerGroup(13), ScaleStorage = ScaleEncoding.BFloat16 };
            cases[$"{format} per-channel fp16"] = ternary with { ScaleStorage = ScaleEncoding.Float16 };
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(GeneralCases))]
    public void GeneralKernels_EqualTheCpuQuantizer(string name)
    {
        RtnOptions options = GeneralOptions[name];
        // 7×77: partial groups and blocks at both edges, an all-zero row, outliers; NF4 gets 9×1984 (279 blocks of 64, so
        // the second double-quantization block is partial) as well.
        var shapes = new List<(int Rows, int Columns)> { (7, 77) };
        if (options.Format == NumberFormat.Nf4)
        {
            shapes.Add((9, 1984));
        }

        foreach ((int rows, int columns) in shapes)
        {
            DenseTensor w = Weights(rows, columns, seed: name.Length + columns);
            if (!options.Saturate)
            {
                // Rows whose FP16 scale is subnormal and rounds down by up to a half: x / s lands beyond the largest normal.
                var codec = ((FloatFormat)options.Format).Codec;
                float target = codec.MaxNormal * MathF.ScaleB(1.4f, -24);
                foreach (int r in new[] { 1, 5 })
                {
                    Span<float> row = w.Row(r);
                    float max = TensorPrimitives.MaxMagnitude(row);
                    TensorPrimitives.Multiply(row, MathF.Abs(target / max), row);
                }
            }

            AssertSameAsCpu(options, w);
        }
    }

    [Fact]
    public void Fp8Block128_OnAShapeTheBlocksDoNotDivide_EqualsTheCpu() => AssertSameAsCpu(RtnOptions.Fp8Block128, Weights(130, 131, seed: 3));

    [Fact]
    public void NonSaturatingFp_OverflowsToTheFormatsSpecialCodes()
    {
        // A weight 1.4× the largest normal of an FP16 scale's element grid: E4M3 must give NaN codes, E5M2 ∞ codes.
        foreach (string format in new[] { "fp8-e4m3", "fp8-e5m2" })
        {
            var options = new RtnOptions { Format = NumberFormat.FromName(format), Saturate = false, ScaleStorage = ScaleEncoding.Float16 };
            var codec = ((FloatFormat)options.Format).Codec;
            var w = new DenseTensor(1, 2);
            w[0, 0] = codec.MaxNormal * MathF.ScaleB(1.4f, -24);
            w[0, 1] = -w[0, 0];
            QuantizedTensor gpu = AssertSameAsCpu(options, w);
            byte expected = format == "fp8-e4m3" ? (byte)0x7F : (byte)0x7C;
            Assert.Equal(new[] { expected, (byte)(expected | 0x80) }, gpu.UnpackCodes());
        }
    }

    [Fact]
    public void ScaleRounding_EqualsHalfAndBFloat16Conversions()
    {
        var random = new Random(7);
        var values = new List<float> { 0f, 65504f, 65519.99f, 65520f, 65536f, MathF.ScaleB(1, -24), MathF.ScaleB(1.5f, -24), MathF.ScaleB(1, -25),
            MathF.ScaleB(1.5f, -25), MathF.ScaleB(1, -14), MathF.ScaleB(1.999f, -15), float.MaxValue, float.Epsilon, 3.3895314e38f, 1f / 3 };
        for (int i = 0; i < 200_000; i++)
        {
            float v = BitConverter.Int32BitsToSingle(random.Next() & 0x7F7F_FFFF);
            values.Add(v);
        }

        foreach (float v in values)
        {
            foreach (float x in new[] { v, -v })
            {
                Assert.Equal(BitConverter.SingleToInt32Bits((float)(Half)x), BitConverter.SingleToInt32Bits(GeneralKernels.RoundScale(x, 1)));
                Assert.Equal(BitConverter.SingleToInt32Bits((float)(BFloat16)x), BitConverter.SingleToInt32Bits(GeneralKernels.RoundScale(x, 2)));
            }
        }
    }

    [Fact]
    public void BadInput_IsRefusedLikeTheCpu()
    {
        DenseTensor nan = RandomData.GaussianMatrix(2, 64, seed: 1);
        nan[1, 1] = float.NaN;
        DenseTensor inf = RandomData.GaussianMatrix(2, 64, seed: 1);
        inf[0, 5] = float.NegativeInfinity;
        foreach (RtnOptions options in new[] { RtnOptions.Mxfp4, RtnOptions.Nf4, RtnOptions.Fp8Block128 with { Granularity = Granularity.PerBlock(2, 32) }, new RtnOptions { Format = NumberFormat.TernaryThreshold } })
        {
            Assert.Throws<ArgumentException>("weight", () => options.CreateCompressor().Quantize(nan));
            Assert.Throws<ArgumentException>("weight", () => new GpuRoundToNearestQuantizer(_gpu, options).Quantize(nan));
            Assert.Throws<ArgumentException>("weight", () => new GpuRoundToNearestQuantizer(_gpu, options).Quantize(inf));
        }

        // A scale beyond FP16's 65504 cannot be stored: the same exception as the CPU's, raised after the kernels.
        DenseTensor huge = RandomData.GaussianMatrix(3, 40, seed: 2);
        huge[2, 7] = 3e7f;
        var fp16 = RtnOptions.W8PerChannel with { Granularity = Granularity.PerTensor, ScaleStorage = ScaleEncoding.Float16 };
        Assert.Throws<ArgumentException>("options", () => fp16.CreateCompressor().Quantize(huge));
        Assert.Throws<ArgumentException>("options", () => new GpuRoundToNearestQuantizer(_gpu, fp16).Quantize(huge));
        Assert.Throws<ArgumentException>("options", () => new GpuRoundToNearestQuantizer(_gpu, fp16 with { Granularity = Granularity.PerChannel }).Quantize(huge));
    }

    [Fact]
    public void QuantizeOnDevice_GeneralOptions_NeedTheirWorkspace()
    {
        var quantizer = new GpuRoundToNearestQuantizer(_gpu, RtnOptions.Fp8Block128);
        Assert.True(quantizer.WorkspaceLength(300, 300) > 0);
        Assert.Equal(GpuRoundToNearestQuantizer.WorkspaceLength(300), new GpuRoundToNearestQuantizer(_gpu, RtnOptions.W8PerChannel).WorkspaceLength(300, 300));
    }

    private static DenseTensor Weights(int rows, int columns, int seed)
    {
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed);
        w.Row(Math.Min(3, rows - 1)).Clear();
        for (int i = 0; i < w.Length; i += 11)
        {
            w.Span[i] *= 25f;
        }

        return w;
    }

    private QuantizedTensor AssertSameAsCpu(RtnOptions options, DenseTensor w)
    {
        QuantizedTensor cpu = options.CreateCompressor().Quantize(w);
        var quantizer = new GpuRoundToNearestQuantizer(_gpu, options);
        QuantizedTensor gpu = quantizer.Quantize(w);

        Assert.Equal(cpu.ScaleEncoding, gpu.ScaleEncoding);
        Assert.Equal(cpu.Scales.ToArray().Select(BitConverter.SingleToInt32Bits), gpu.Scales.ToArray().Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(cpu.ZeroPoints.ToArray(), gpu.ZeroPoints.ToArray());
        Assert.Equal(BitConverter.SingleToInt32Bits(cpu.GlobalScale), BitConverter.SingleToInt32Bits(gpu.GlobalScale));
        Assert.Equal(cpu.DoubleQuantization is null, gpu.DoubleQuantization is null);
        if (cpu.DoubleQuantization is { } expected)
        {
            Assert.Equal(expected.Codes, gpu.DoubleQuantization!.Codes);
            Assert.Equal(expected.Scales.Select(BitConverter.SingleToInt32Bits), gpu.DoubleQuantization.Scales.Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(BitConverter.SingleToInt32Bits(expected.Offset), BitConverter.SingleToInt32Bits(gpu.DoubleQuantization.Offset));
        }

        Assert.Equal(cpu.RowStride, gpu.RowStride);
        Assert.Equal(cpu.PackedCodes.ToArray(), gpu.PackedCodes.ToArray());
        Assert.True(quantizer.Dequantize(cpu).BitwiseEquals(cpu.Decompress()));
        return gpu;
    }

    public void Dispose() => _gpu.Dispose();
}
