using Compression.Calibration;
using Compression.Gpu.Calibration;
using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using Compression.Testing;
using Xunit.Abstractions;

namespace Compression.Quantization.Tests;

/// <summary>The GPU GPTQ sweep on ILGPU's CPU simulator against the CPU quantizer (the same run on an H100 is in
/// benchmarks/Compression.GpuBench).</summary>
[Collection("Gpu")]
public sealed class GpuGptqTests(ITestOutputHelper output) : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    // Few rows: the simulator runs each warp's 32 lanes as threads, and rows are independent anyway.
    private static readonly Dictionary<string, (RtnOptions Options, int Rows, int Columns, int BlockSize)> Schemes = new()
    {
        ["int4-g128-sym"] = (RtnOptions.W4Group128, 8, 256, 128),
        ["int8-per-channel"] = (RtnOptions.W8PerChannel, 8, 96, 32),
        ["int4-g32-asym"] = (new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), Symmetric = false }, 8, 128, 48),
        ["int3-g48-tail"] = (new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(48) }, 8, 100, 128),
        ["fp8-per-channel"] = (RtnOptions.Fp8PerChannel, 8, 96, 128),
        ["fp4-g32"] = (new RtnOptions { Format = NumberFormat.Fp4E2M1, Granularity = Granularity.PerGroup(32) }, 8, 128, 64),
        ["mxfp4"] = (RtnOptions.Mxfp4, 8, 128, 128),
        ["mxint8"] = (new RtnOptions { Format = NumberFormat.Mxint8 }, 8, 128, 64),
        ["nvfp4"] = (RtnOptions.Nvfp4, 8, 128, 40),
        // A block wider than the warp kernel holds (512 columns): the thread-per-row sweep.
        ["int8-per-channel-wide-block"] = (RtnOptions.W8PerChannel, 4, 544, 1024),
    };

    public static TheoryData<string, bool, bool> Cases()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (string scheme in Schemes.Keys)
        {
            data.Add(scheme, false, false);
            if (!scheme.EndsWith("wide-block", StringComparison.Ordinal))
            {
                data.Add(scheme, true, false);
                data.Add(scheme, true, true);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void GpuGptq_EqualsTheCpuQuantizer_UpToRoundingOrder(string scheme, bool actOrder, bool staticGroups)
    {
        (RtnOptions rtn, int rows, int columns, int blockSize) = Schemes[scheme];
        var options = new GptqOptions { Quantization = rtn, ActOrder = actOrder, StaticGroups = staticGroups, BlockSize = blockSize };
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: rows + columns, standardDeviation: 0.05f);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 2 * columns, seed: 11);
        var context = CompressionContext.Default with { InputHessian = hessian };

        GptqTensor cpu = new GptqQuantizer(options).Quantize(w, context);
        GptqTensor gpu = new GpuGptqQuantizer(_gpu, options).Quantize(w, context);

        byte[] cpuCodes = cpu.Quantized.UnpackCodes(), gpuCodes = gpu.Quantized.UnpackCodes();
        double equal = cpuCodes.Zip(gpuCodes).Count(p => p.First == p.Second) / (double)cpuCodes.Length;
        double relative = Math.Abs(gpu.Report!.Objective - cpu.Report!.Objective) / cpu.Report.Objective;
        output.WriteLine($"{scheme} act={actOrder} static={staticGroups}: objective {gpu.Report.Objective:G7} vs CPU {cpu.Report.Objective:G7}, codes equal {equal:P3}");
        Assert.True(equal >= 0.995, $"only {equal:P2} of codes equal");
        Assert.True(relative <= 1e-4, $"objective differs by {relative:E2}");
        Assert.Equal(cpu.Permutation, gpu.Permutation);
        Assert.Equal(cpu.GroupIndex, gpu.GroupIndex);
        // The device objective is the float64 quadratic form of the result.
        double direct = GptqReference.Objective(w, gpu.Decompress(), hessian.GetHessian());
        Assert.Equal(direct, gpu.Report.Objective, direct * 1e-9);
        // Column losses are the sweep's: their sum is close to the damped objective, as on the CPU.
        Assert.Equal(cpu.Report.TotalLoss, gpu.Report.TotalLoss, cpu.Report.TotalLoss * 1e-3);
        Assert.Equal(_gpu.DeviceName, gpu.Report.Device);
    }

    [Fact]
    public void GpuGptq_WithMrGptqRotation_EqualsTheCpuQuantizer()
    {
        var options = new GptqOptions { Quantization = RtnOptions.Nvfp4, Rotation = new HadamardRotationParameters(16, SignSeed: 3), ActOrder = true };
        DenseTensor w = RandomData.GaussianMatrix(16, 128, seed: 5, standardDeviation: 0.05f);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(128, samples: 256, seed: 12);
        var context = CompressionContext.Default with { InputHessian = hessian };
        GptqTensor cpu = new GptqQuantizer(options).Quantize(w, context);
        GptqTensor gpu = new GpuGptqQuantizer(_gpu, options).Quantize(w, context);
        Assert.Equal(cpu.Rotation, gpu.Rotation);
        Assert.Equal(cpu.Report!.Objective, gpu.Report!.Objective, cpu.Report.Objective * 1e-4);
        // In the original basis, up to the float32 rounding of the rotations.
        double direct = GptqReference.Objective(w, gpu.Decompress(), hessian.GetHessian());
        Assert.Equal(direct, gpu.Report.Objective, direct * 1e-5);
    }

    [Fact]
    public void GpuGptq_TakesAHessianAccumulatedOnTheDevice()
    {
        DenseTensor w = RandomData.GaussianMatrix(16, 64, seed: 8, standardDeviation: 0.05f);
        DenseTensor x = RandomData.GaussianMatrix(96, 64, seed: 9);
        var cpuHessian = new HessianAccumulator(64);
        cpuHessian.Add(x);
        using var gpuHessian = new GpuHessianAccumulator(_gpu, 64);
        var quantizer = new GpuGptqQuantizer(_gpu, new GptqOptions { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) } });
        Assert.Throws<ArgumentException>(() => quantizer.Quantize(w, gpuHessian));        // no samples yet
        gpuHessian.Add(x);
        GptqTensor fromDevice = quantizer.Quantize(w, gpuHessian);
        GptqTensor fromHost = quantizer.Quantize(w, CompressionContext.Default with { InputHessian = cpuHessian });
        Assert.Equal(fromHost.Report!.Objective, fromDevice.Report!.Objective, fromHost.Report.Objective * 1e-4);
        using var wrongSize = new GpuHessianAccumulator(_gpu, 32);
        Assert.Throws<ArgumentException>(() => quantizer.Quantize(w, wrongSize));
    }

    [Fact]
    public void GpuGptq_IndefiniteHessian_RaisesDampeningLikeTheCpu_AndGivesUpLikeIt()
    {
        // H = I − 1.05·uuᵀ has eigenvalue −0.05: the device factorization fails at λ = 1% and succeeds at 10%.
        const int n = 48;
        DenseTensor w = RandomData.GaussianMatrix(4, n, seed: 1);
        var quantizer = new GpuGptqQuantizer(_gpu, GptqOptions.W8PerChannel);
        GptqTensor q = quantizer.Quantize(w, GptqTests.IdentityMinusRankOne(n, 1.05));
        Assert.Equal(2, q.Report!.DampeningAttempts);
        Assert.Equal(0.1, q.Report.DampeningPercent, 1e-12);
        var beyondRepair = new GpuGptqQuantizer(_gpu, GptqOptions.W8PerChannel with { MaxDampeningAttempts = 2 });
        Assert.Throws<InvalidOperationException>(() => beyondRepair.Quantize(w, GptqTests.IdentityMinusRankOne(n, 2.0)));
    }

    [Fact]
    public void GpuGptq_RefusesWhatOnlyTheCpuRuns()
    {
        Assert.Throws<NotSupportedException>(() => new GpuGptqQuantizer(_gpu, new GptqOptions { Quantization = RtnOptions.W4Group128 with { Clipping = ClippingSearch.Default } }));
        Assert.Throws<NotSupportedException>(() => new GpuGptqQuantizer(_gpu,
            new GptqOptions { Quantization = new RtnOptions { Format = NumberFormat.TernaryAbsMean, Granularity = Granularity.PerGroup(64) } }));
        Assert.Throws<ArgumentException>(() => new GpuGptqQuantizer(_gpu, new GptqOptions { Quantization = RtnOptions.Fp8Block128 }));
    }

    [Fact]
    public void GpuGptq_ReportsProgressPerBlock_AndHonoursCancellation()
    {
        DenseTensor w = RandomData.GaussianMatrix(8, 128, seed: 1);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(128, samples: 256, seed: 2);
        var quantizer = new GpuGptqQuantizer(_gpu, new GptqOptions { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) }, BlockSize = 32 });
        var seen = new List<CompressionProgress>();
        quantizer.Quantize(w, CompressionContext.Default with { InputHessian = hessian, Progress = new Recorder(seen) });
        Assert.Equal([1L, 2L, 3L, 4L], seen.Select(p => p.Completed));

        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            quantizer.Quantize(w, CompressionContext.Default with { InputHessian = hessian, CancellationToken = cancellation.Token }));
    }

    public void Dispose() => _gpu.Dispose();

    private sealed class Recorder(List<CompressionProgress> seen) : IProgress<CompressionProgress>
    {
        public void Report(CompressionProgress value) => seen.Add(value);
    }
}
