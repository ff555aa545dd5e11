using System.Runtime.InteropServices;
using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>
/// <see cref="ComputeDevice"/> routing of the RTN and GPTQ quantizers: the GPU routes are exercised on ILGPU's CPU
/// simulator (made the selected context with <see cref="GpuSelection.UseContext"/>), so they run on machines without
/// a GPU; what a forced GPU does without one depends on the machine and is checked either way.
/// </summary>
[Collection("Gpu")]
public sealed class DeviceSelectionTests : IDisposable
{
    private readonly GpuContext _simulator = GpuContext.CreateCpuSimulator();

    public void Dispose() => _simulator.Dispose();

    [Theory]
    [InlineData("int4-g128")]
    [InlineData("nvfp4")]
    [InlineData("nf4")]
    public void Rtn_ForcedGpu_RunsOnTheSelectedContext_AndEqualsTheCpuBitForBit(string scheme)
    {
        RtnOptions options = scheme switch
        {
            "int4-g128" => RtnOptions.W4Group128,
            "nvfp4" => RtnOptions.Nvfp4,
            _ => RtnOptions.Nf4,
        };
        DenseTensor weight = RandomData.GaussianMatrix(24, 256, seed: scheme.Length, standardDeviation: 0.05f);
        QuantizedTensor cpu = new RoundToNearestQuantizer(options with { Device = ComputeDevice.Cpu }).Quantize(weight);
        QuantizedTensor gpu;
        int kernelsBefore = _simulator.LoadedKernelCount;
        using (GpuSelection.UseContext(_simulator))
        {
            gpu = new RoundToNearestQuantizer(options with { Device = ComputeDevice.Gpu }).Quantize(weight);
        }

        Assert.True(_simulator.LoadedKernelCount > kernelsBefore, "the forced GPU route did not run a kernel on the selected context");
        Assert.Equal(cpu.PackedCodes.ToArray(), gpu.PackedCodes.ToArray());
        Assert.Equal(MemoryMarshal.AsBytes(cpu.Scales.Span).ToArray(), MemoryMarshal.AsBytes(gpu.Scales.Span).ToArray());
        Assert.Equal(BitConverter.SingleToInt32Bits(cpu.GlobalScale), BitConverter.SingleToInt32Bits(gpu.GlobalScale));
    }

    [Fact]
    public void Rtn_Auto_KeepsSmallWeightsOnTheCpu_AndCpuNeverTouchesTheGpu()
    {
        DenseTensor small = RandomData.GaussianMatrix(16, 128, seed: 3);
        using (GpuSelection.UseContext(_simulator))
        {
            new RoundToNearestQuantizer(RtnOptions.W4Group128).Quantize(small);
            new RoundToNearestQuantizer(RtnOptions.W4Group128 with { Device = ComputeDevice.Cpu }).Quantize(small);
        }

        Assert.Equal(0, _simulator.LoadedKernelCount);
        Assert.True(small.Length < RoundToNearestQuantizer.AutoGpuMinimumWeights);
    }

    [Fact]
    public void Rtn_ForcedGpu_WithOptionsTheKernelsLack_IsRefused()
    {
        var options = RtnOptions.Mxfp4 with { Clipping = ClippingSearch.Default, Device = ComputeDevice.Gpu };
        Assert.False(GpuRoundToNearestQuantizer.Supports(options));
        using (GpuSelection.UseContext(_simulator))
        {
            var e = Assert.Throws<NotSupportedException>(() => new RoundToNearestQuantizer(options).Quantize(RandomData.GaussianMatrix(4, 64, seed: 1)));
            Assert.Contains("scale search", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Rtn_ForcedGpu_WithoutAnyGpu_SaysSo()
    {
        var options = RtnOptions.W8PerChannel with { Device = ComputeDevice.Gpu };
        DenseTensor weight = RandomData.GaussianMatrix(4, 64, seed: 2);
        if (GpuSelection.TryGetShared(out _, out string reason))
        {
            // A machine with a GPU: the forced route runs there and equals the CPU.
            Assert.Equal(new RoundToNearestQuantizer(options with { Device = ComputeDevice.Cpu }).Quantize(weight).PackedCodes.ToArray(),
                new RoundToNearestQuantizer(options).Quantize(weight).PackedCodes.ToArray());
            return;
        }

        var e = Assert.Throws<NotSupportedException>(() => new RoundToNearestQuantizer(options).Quantize(weight));
        Assert.Contains("rtn", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Device_RejectsUndefinedValues()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RtnOptions.W4Group128 with { Device = (ComputeDevice)7 });
        Assert.Throws<ArgumentOutOfRangeException>(() => GptqOptions.W4Group128 with { Device = (ComputeDevice)(-1) });
    }

    [Fact]
    public void Gptq_ForcedGpu_RunsTheDeviceSweep_AndAutoKeepsSmallLayersOnTheCpu()
    {
        DenseTensor weight = RandomData.GaussianMatrix(8, 256, seed: 5, standardDeviation: 0.05f);
        var context = CompressionContext.Default with { InputHessian = RandomData.CorrelatedHessian(256, samples: 512, seed: 6) };
        GptqTensor cpu = new GptqQuantizer(GptqOptions.W4Group128 with { Device = ComputeDevice.Cpu }).Quantize(weight, context);
        GptqTensor gpu, auto;
        using (GpuSelection.UseContext(_simulator))
        {
            gpu = new GptqQuantizer(GptqOptions.W4Group128 with { Device = ComputeDevice.Gpu }).Quantize(weight, context);
            auto = new GptqQuantizer(GptqOptions.W4Group128).Quantize(weight, context);
        }

        Assert.Equal("CPU", cpu.Report!.Device);
        Assert.Equal("CPU", auto.Report!.Device);
        Assert.Equal(_simulator.DeviceName, gpu.Report!.Device);
        Assert.Equal(cpu.Report.Objective, gpu.Report.Objective, cpu.Report.Objective * 1e-3);
    }

    [Fact]
    public void Gptq_ForcedGpu_WithAFormatTheSweepLacks_IsRefused()
    {
        var options = new GptqOptions { Quantization = new RtnOptions { Format = NumberFormat.TernaryAbsMean, Granularity = Granularity.PerChannel }, Device = ComputeDevice.Gpu };
        var context = CompressionContext.Default with { InputHessian = RandomData.CorrelatedHessian(64, samples: 128, seed: 6) };
        using (GpuSelection.UseContext(_simulator))
        {
            Assert.Throws<NotSupportedException>(() => new GptqQuantizer(options).Quantize(RandomData.GaussianMatrix(4, 64, seed: 1), context));
        }
    }

    [Fact]
    public void UseContext_IsScopedToTheCallingFlow()
    {
        using (GpuSelection.UseContext(_simulator))
        {
            Assert.Same(_simulator, GpuSelection.Select(ComputeDevice.Gpu, worthIt: true, "test"));
            // Another flow (a thread started without this context's values) does not see the choice.
            GpuContext? elsewhere = null;
            var thread = new Thread(() => elsewhere = GpuSelection.TryGetShared(out GpuContext? g, out _) ? g : null);
            thread.UnsafeStart();
            thread.Join();
            Assert.NotSame(_simulator, elsewhere);
        }

        Assert.Null(GpuSelection.Select(ComputeDevice.Cpu, worthIt: true, "test"));
    }
}
