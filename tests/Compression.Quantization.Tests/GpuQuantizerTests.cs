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
        // 77 columns: the per-group and per-byte kernels; 64 columns: the warp kernels (whole groups, paired nibbles).
        foreach (int columns in new[] { 77, 64 })
        {
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

    [Fact]
    public void CpuOnlyFeatures_AreRefusedClearly()
    {
        Assert.Throws<NotSupportedException>(() => new GpuRoundToNearestQuantizer(_gpu, RtnOptions.Nf4));
        Assert.Throws<NotSupportedException>(() => new GpuRoundToNearestQuantizer(_gpu, RtnOptions.Fp8Block128));
        Assert.Throws<NotSupportedException>(() => new GpuRoundToNearestQuantizer(_gpu, RtnOptions.W4Group128 with { Clipping = ClippingSearch.Default }));
        DenseTensor nan = RandomData.GaussianMatrix(2, 32, seed: 1);
        nan[1, 1] = float.NaN;
        Assert.Throws<ArgumentException>("weight", () => new GpuRoundToNearestQuantizer(_gpu, RtnOptions.Mxfp4).Quantize(nan));
    }

    public void Dispose() => _gpu.Dispose();
}
