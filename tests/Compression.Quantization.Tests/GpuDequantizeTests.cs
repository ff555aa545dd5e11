using System.Runtime.InteropServices;
using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using Compression.Tensors;
using Compression.Testing;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Quantization.Tests;

/// <summary>
/// <c>GpuRoundToNearestQuantizer.DequantizeOnDevice</c> on ILGPU's CPU simulator: from device-resident codes and scales
/// to float32 equal to <see cref="CompressedTensor.Decompress"/> bit for bit, and to BF16 equal to that result's
/// round-to-nearest-even conversion, on shapes the bandwidth kernel takes and on shapes it leaves to the per-element one.
/// </summary>
[Collection("Gpu")]
public sealed class GpuDequantizeTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    private static readonly Dictionary<string, RtnOptions> Schemes = new(GpuBFloat16QuantizeTests.Schemes)
    {
        ["int4 g128 asymmetric"] = RtnOptions.W4Group128 with { Symmetric = false },
        ["int4 g32"] = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) },
        ["fp8-e5m2 per-channel"] = RtnOptions.Fp8PerChannel with { Format = NumberFormat.Fp8E5M2 },
        ["fp4-e2m1 g16"] = RtnOptions.Fp8PerChannel with { Format = NumberFormat.Fp4E2M1, Granularity = Granularity.PerGroup(16) },
        ["mxint8"] = new RtnOptions { Format = NumberFormat.Mxint8 },
    };

    public static TheoryData<string, int, int> Cases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string name in Schemes.Keys)
        {
            // 256 columns: 32 codes per thread; 300 and 264 (not a multiple of 32): one thread per element.
            data.Add(name, 9, 256);
            data.Add(name, 7, 300);
            data.Add(name, 4, 264);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DequantizeOnDevice_EqualsDecompress_InFloat32AndBFloat16(string scheme, int rows, int columns)
    {
        RtnOptions options = Schemes[scheme];
        QuantizedTensor q = options.CreateCompressor().Quantize(Weights(rows, columns, seed: scheme.Length * 17 + columns));
        DenseTensor expected = q.Decompress();

        float[] f32 = Dequantize(options, q, bfloat16: false, offset: 0).Single;
        ushort[] bf16 = Dequantize(options, q, bfloat16: true, offset: 0).Bits;

        Assert.Equal(MemoryMarshal.AsBytes(expected.Span).ToArray(), MemoryMarshal.AsBytes(f32.AsSpan()).ToArray());
        Assert.Equal(ExpectedBFloat16(expected), bf16);
    }

    [Theory]
    [InlineData("int8 per-channel")]
    [InlineData("mxfp4")]
    [InlineData("nvfp4")]
    public void DequantizeOnDevice_MisalignedDestination_FallsBackAndStillMatches(string scheme)
    {
        RtnOptions options = Schemes[scheme];
        QuantizedTensor q = options.CreateCompressor().Quantize(Weights(5, 256, seed: 9));
        DenseTensor expected = q.Decompress();

        Assert.Equal(MemoryMarshal.AsBytes(expected.Span).ToArray(),
            MemoryMarshal.AsBytes(Dequantize(options, q, bfloat16: false, offset: 1).Single.AsSpan()).ToArray());
        Assert.Equal(ExpectedBFloat16(expected), Dequantize(options, q, bfloat16: true, offset: 3).Bits);
    }

    [Fact]
    public void DequantizeOnDevice_GeneralFormat_DecodesToFloat32_AndRefusesBFloat16()
    {
        QuantizedTensor q = RtnOptions.Fp8Block128.CreateCompressor().Quantize(Weights(130, 131, seed: 4));
        Assert.Equal(MemoryMarshal.AsBytes(q.Decompress().Span).ToArray(),
            MemoryMarshal.AsBytes(Dequantize(RtnOptions.Fp8Block128, q, bfloat16: false, offset: 0).Single.AsSpan()).ToArray());
        BadInput.AssertRefused("bf16 of a general format", () => Dequantize(RtnOptions.Fp8Block128, q, bfloat16: true, offset: 0),
            typeof(NotSupportedException), null, "float32 only");
    }

    [Fact]
    public void DequantizeOnDevice_ShortViews_AreRefusedNamingTheBuffer()
    {
        const int rows = 4, columns = 256;
        Accelerator a = _gpu.Accelerator;
        using MemoryBuffer1D<byte, Stride1D.Dense> packed = a.Allocate1D<byte>(rows * columns / 2);
        using MemoryBuffer1D<float, Stride1D.Dense> scales = a.Allocate1D<float>(rows * columns / 16);
        using MemoryBuffer1D<byte, Stride1D.Dense> zeros = a.Allocate1D<byte>(rows * columns / 16);
        using MemoryBuffer1D<float, Stride1D.Dense> global = a.Allocate1D<float>(1);
        using MemoryBuffer1D<float, Stride1D.Dense> output = a.Allocate1D<float>(rows * columns);
        using MemoryBuffer1D<ushort, Stride1D.Dense> output16 = a.Allocate1D<ushort>(rows * columns);
        var nvfp4 = new GpuRoundToNearestQuantizer(_gpu, RtnOptions.Nvfp4);
        BadInput.AssertRefused("short packed", () => nvfp4.DequantizeOnDevice(packed.View.SubView(0, 100), scales.View, zeros.View, global.View, rows,
            columns, output.View), typeof(ArgumentException), "packed", "needs");
        BadInput.AssertRefused("short scales", () => nvfp4.DequantizeOnDevice(packed.View, scales.View.SubView(0, 63), zeros.View, global.View, rows,
            columns, output.View), typeof(ArgumentException), "scales", "needs");
        BadInput.AssertRefused("no tensor scale", () => nvfp4.DequantizeOnDevice(packed.View, scales.View, zeros.View, global.View.SubView(0, 0), rows,
            columns, output.View), typeof(ArgumentException), "tensorScale", "needs");
        BadInput.AssertRefused("short float32 output", () => nvfp4.DequantizeOnDevice(packed.View, scales.View, zeros.View, global.View, rows,
            columns, output.View.SubView(0, rows * columns - 1)), typeof(ArgumentException), "destination", "needs");
        BadInput.AssertRefused("short bf16 output", () => nvfp4.DequantizeOnDevice(packed.View, scales.View, zeros.View, global.View, rows,
            columns, output16.View.SubView(0, 8)), typeof(ArgumentException), "destination", "needs");
        var asymmetric = new GpuRoundToNearestQuantizer(_gpu, RtnOptions.W4Group128 with { Symmetric = false });
        BadInput.AssertRefused("short zero points", () => asymmetric.DequantizeOnDevice(packed.View, scales.View, zeros.View.SubView(0, 7), global.View,
            rows, columns, output.View), typeof(ArgumentException), "zeroPoints", "needs");
    }

    private static DenseTensor Weights(int rows, int columns, int seed)
    {
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed, standardDeviation: 0.02f);
        w.Row(Math.Min(2, rows - 1)).Clear();
        for (int i = 0; i < w.Length; i += 13)
        {
            w.Span[i] *= 30f;
        }

        return w;
    }

    private static ushort[] ExpectedBFloat16(DenseTensor values)
    {
        var bf16 = new BFloat16[values.Length];
        NumericConversions.ConvertToBFloat16(values.Span, bf16);
        return MemoryMarshal.Cast<BFloat16, ushort>(bf16).ToArray();
    }

    /// <summary>Uploads <paramref name="q"/>'s codes and scales and decodes them into a poisoned output that starts
    /// <paramref name="offset"/> elements into its buffer.</summary>
    private (float[] Single, ushort[] Bits) Dequantize(RtnOptions options, QuantizedTensor q, bool bfloat16, int offset)
    {
        var quantizer = new GpuRoundToNearestQuantizer(_gpu, options);
        Accelerator a = _gpu.Accelerator;
        int total = q.Rows * q.Columns;
        using MemoryBuffer1D<byte, Stride1D.Dense> packed = a.Allocate1D(q.PackedCodes.ToArray());
        using MemoryBuffer1D<float, Stride1D.Dense> scales = a.Allocate1D(q.Scales.ToArray());
        using MemoryBuffer1D<byte, Stride1D.Dense> zeros = a.Allocate1D(q.ZeroPoints.IsEmpty ? new byte[1] : q.ZeroPoints.ToArray());
        using MemoryBuffer1D<float, Stride1D.Dense> global = a.Allocate1D(new[] { q.GlobalScale });
        if (bfloat16)
        {
            using MemoryBuffer1D<ushort, Stride1D.Dense> output = a.Allocate1D(Enumerable.Repeat((ushort)0x7FC1, total + offset).ToArray());
            quantizer.DequantizeOnDevice(packed.View, scales.View, zeros.View, global.View, q.Rows, q.Columns, output.View.SubView(offset, total));
            a.Synchronize();
            return ([], output.GetAsArray1D()[offset..]);
        }
        else
        {
            using MemoryBuffer1D<float, Stride1D.Dense> output = a.Allocate1D(Enumerable.Repeat(float.NaN, total + offset).ToArray());
            quantizer.DequantizeOnDevice(packed.View, scales.View, zeros.View, global.View, q.Rows, q.Columns, output.View.SubView(offset, total));
            a.Synchronize();
            return (output.GetAsArray1D()[offset..], []);
        }
    }

    public void Dispose() => _gpu.Dispose();
}
