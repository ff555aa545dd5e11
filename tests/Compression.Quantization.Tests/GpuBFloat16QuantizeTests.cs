using System.Runtime.InteropServices;
using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using Compression.Tensors;
using Compression.Testing;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Quantization.Tests;

/// <summary>
/// <see cref="GpuRoundToNearestQuantizer.QuantizeOnDevice(ArrayView{ushort}, int, int, ArrayView{byte}, ArrayView{float}, ArrayView{byte}, ArrayView{float})"/>
/// on ILGPU's CPU simulator: a BF16 weight quantizes, bit for bit, as the CPU quantizer quantizes its exact float32
/// widening, on shapes the bandwidth kernels take and on shapes that fall back to the widening path.
/// </summary>
[Collection("Gpu")]
public sealed class GpuBFloat16QuantizeTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    /// <summary>The schemes (and asymmetric INT8, which the per-channel kernel also takes).</summary>
    internal static readonly Dictionary<string, RtnOptions> Schemes = new()
    {
        ["int8 per-channel"] = RtnOptions.W8PerChannel,
        ["int8 per-channel asymmetric"] = RtnOptions.W8PerChannel with { Symmetric = false },
        ["int4 g128"] = RtnOptions.W4Group128,
        ["fp8-e4m3 per-channel"] = RtnOptions.Fp8PerChannel,
        ["mxfp8-e4m3"] = new RtnOptions { Format = NumberFormat.Mxfp8E4M3 },
        ["mxfp4"] = RtnOptions.Mxfp4,
        ["nvfp4"] = RtnOptions.Nvfp4,
    };

    public static TheoryData<string, int, int> Cases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string name in Schemes.Keys)
        {
            // 256 columns: the octet kernels; 300 and 260 (not a multiple of 8, a partial last group): the widening fallback.
            data.Add(name, 9, 256);
            data.Add(name, 7, 300);
            data.Add(name, 5, 260);
        }

        // Rows wider than the registers of a 1024-thread group hold (4 · 8 · 1024 columns): the re-read loop.
        data.Add("int8 per-channel", 2, 33_024);
        data.Add("fp8-e4m3 per-channel", 2, 33_024);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BFloat16Input_EqualsTheCpuQuantizerOnTheWidenedValues(string scheme, int rows, int columns)
    {
        RtnOptions options = Schemes[scheme];
        (ushort[] bits, DenseTensor widened) = BFloat16Weights(rows, columns, seed: scheme.Length * 31 + columns);
        QuantizedTensor cpu = options.CreateCompressor().Quantize(widened);

        Result device = QuantizeBFloat16(options, cpu, bits, offset: 0);

        AssertSame(cpu, device);
    }

    [Theory]
    [InlineData("int8 per-channel")]
    [InlineData("int4 g128")]
    [InlineData("nvfp4")]
    public void BFloat16Input_MisalignedView_FallsBackAndStillMatches(string scheme)
    {
        RtnOptions options = Schemes[scheme];
        (ushort[] bits, DenseTensor widened) = BFloat16Weights(6, 256, seed: 5);
        QuantizedTensor cpu = options.CreateCompressor().Quantize(widened);

        // One element in: the view no longer starts on a 16-byte boundary, so the vector loads cannot be used.
        AssertSame(cpu, QuantizeBFloat16(options, cpu, bits, offset: 1));
    }

    [Fact]
    public void BFloat16Input_ShortViews_AreRefusedNamingTheBuffer()
    {
        var quantizer = new GpuRoundToNearestQuantizer(_gpu, RtnOptions.W4Group128);
        const int rows = 4, columns = 256;
        Accelerator a = _gpu.Accelerator;
        using MemoryBuffer1D<ushort, Stride1D.Dense> weight = a.Allocate1D<ushort>(rows * columns);
        using MemoryBuffer1D<byte, Stride1D.Dense> packed = a.Allocate1D<byte>(rows * columns / 2);
        using MemoryBuffer1D<float, Stride1D.Dense> scales = a.Allocate1D<float>(rows * columns / 128);
        using MemoryBuffer1D<byte, Stride1D.Dense> zeros = a.Allocate1D<byte>(rows * columns / 128);
        using MemoryBuffer1D<float, Stride1D.Dense> workspace = a.Allocate1D<float>(GpuRoundToNearestQuantizer.WorkspaceLength(rows));
        BadInput.AssertRefused("short weight", () => quantizer.QuantizeOnDevice(weight.View.SubView(0, rows * columns - 1), rows, columns, packed.View,
            scales.View, zeros.View, workspace.View), typeof(ArgumentException), "weight", "needs");
        BadInput.AssertRefused("short packed", () => quantizer.QuantizeOnDevice(weight.View, rows, columns, packed.View.SubView(0, 10),
            scales.View, zeros.View, workspace.View), typeof(ArgumentException), "packed", "needs");
        BadInput.AssertRefused("short scales", () => quantizer.QuantizeOnDevice(weight.View, rows, columns, packed.View,
            scales.View.SubView(0, 1), zeros.View, workspace.View), typeof(ArgumentException), "scales", "needs");
        BadInput.AssertRefused("short workspace", () => quantizer.QuantizeOnDevice(weight.View, rows, columns, packed.View,
            scales.View, zeros.View, workspace.View.SubView(0, 3)), typeof(ArgumentException), "workspace", "needs");
    }

    /// <summary>Rounds a Gaussian weight (outliers, a zero row) to BF16: its bits, and their exact float32 widening.</summary>
    internal static (ushort[] Bits, DenseTensor Widened) BFloat16Weights(int rows, int columns, int seed)
    {
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed, standardDeviation: 0.02f);
        w.Row(Math.Min(3, rows - 1)).Clear();
        for (int i = 0; i < w.Length; i += 11)
        {
            w.Span[i] *= 25f;
        }

        var bf16 = new BFloat16[w.Length];
        NumericConversions.ConvertToBFloat16(w.Span, bf16);
        var widened = new DenseTensor(rows, columns);
        NumericConversions.ConvertToSingle(bf16, widened.Span);
        return (MemoryMarshal.Cast<BFloat16, ushort>(bf16).ToArray(), widened);
    }

    internal sealed record Result(byte[] Packed, float[] Scales, byte[] Zeros, float TensorScale);

    /// <summary>Quantizes <paramref name="bits"/> on the device into poisoned buffers shaped like <paramref name="cpu"/>'s.</summary>
    private Result QuantizeBFloat16(RtnOptions options, QuantizedTensor cpu, ushort[] bits, int offset)
    {
        var quantizer = new GpuRoundToNearestQuantizer(_gpu, options);
        int rows = cpu.Rows, columns = cpu.Columns, stride = cpu.RowStride, groups = cpu.Scales.Length;
        Accelerator a = _gpu.Accelerator;
        using MemoryBuffer1D<ushort, Stride1D.Dense> weight = a.Allocate1D<ushort>(bits.Length + offset);
        using MemoryBuffer1D<byte, Stride1D.Dense> packed = a.Allocate1D<byte>(rows * stride);
        using MemoryBuffer1D<float, Stride1D.Dense> scales = a.Allocate1D<float>(groups);
        using MemoryBuffer1D<byte, Stride1D.Dense> zeros = a.Allocate1D<byte>(groups);
        using MemoryBuffer1D<float, Stride1D.Dense> workspace = a.Allocate1D<float>(quantizer.WorkspaceLength(rows, columns));
        weight.View.SubView(offset, bits.Length).BaseView.CopyFromCPU(bits);
        // Poison: every output must be written by the kernels, not left over.
        packed.View.BaseView.CopyFromCPU(Enumerable.Repeat((byte)0xA5, rows * stride).ToArray());
        scales.View.BaseView.CopyFromCPU(Enumerable.Repeat(float.NaN, groups).ToArray());
        zeros.View.BaseView.CopyFromCPU(Enumerable.Repeat((byte)0x5A, groups).ToArray());
        workspace.View.BaseView.CopyFromCPU(Enumerable.Repeat(float.NaN, (int)workspace.Length).ToArray());

        quantizer.QuantizeOnDevice(weight.View.SubView(offset, bits.Length), rows, columns, packed.View, scales.View, zeros.View, workspace.View);
        a.Synchronize();

        var tensorScale = new float[1];
        if (options.Format == NumberFormat.Nvfp4)
        {
            workspace.View.SubView(GpuRoundToNearestQuantizer.WorkspaceLength(rows) - 1, 1).BaseView.CopyToCPU(tensorScale);
        }

        return new Result(packed.GetAsArray1D(), scales.GetAsArray1D(), zeros.GetAsArray1D(), tensorScale[0]);
    }

    private static void AssertSame(QuantizedTensor cpu, Result device)
    {
        Assert.Equal(cpu.Scales.ToArray().Select(BitConverter.SingleToInt32Bits), device.Scales.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(cpu.PackedCodes.ToArray(), device.Packed);
        if (!cpu.ZeroPoints.IsEmpty)
        {
            Assert.Equal(cpu.ZeroPoints.ToArray(), device.Zeros);
        }

        if (cpu.Format == NumberFormat.Nvfp4)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(cpu.GlobalScale), BitConverter.SingleToInt32Bits(device.TensorScale));
        }
    }

    public void Dispose() => _gpu.Dispose();
}
