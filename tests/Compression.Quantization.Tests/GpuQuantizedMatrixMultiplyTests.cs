using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using Compression.Tensors;
using Compression.Testing;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Quantization.Tests;

/// <summary>The fused dequantize × matrix-vector kernels on ILGPU's CPU simulator against a float64 product of X and the
/// CPU <see cref="CompressedTensor.Decompress()"/>: within float32 rounding (1e-5 of Σ|x||ŵ| per output). GpuBench's
/// gemv mode runs the same comparison on a real GPU.</summary>
[Collection("Gpu")]
public sealed class GpuQuantizedMatrixMultiplyTests(GpuQuantizedMatrixMultiplyTests.Simulator simulator) : IClassFixture<GpuQuantizedMatrixMultiplyTests.Simulator>
{
    private const int Rows = 37;
    private readonly GpuContext _gpu = simulator.Gpu;

    /// <summary>One simulator for the class: its kernel cache spares recompiling the kernels for every case.</summary>
    public sealed class Simulator : IDisposable
    {
        public GpuContext Gpu { get; } = GpuContext.CreateCpuSimulator();

        public void Dispose() => Gpu.Dispose();
    }

    public static TheoryData<string, int, int> Cases()
    {
        var data = new TheoryData<string, int, int>();
        // Columns: one partial tile, and more than one tile with a partial last one (tiles are 1024 columns for 4-bit
        // codes, 512 for 8-bit codes).
        foreach ((string scheme, int[] columns) in new[]
        {
            ("int4-g128", new[] { 384, 1152 }),
            ("int4-g128-full", new[] { 256 }),
            ("int4-g128-asymmetric", new[] { 384, 400 }),
            ("int8-per-channel-asymmetric", new[] { 260 }),
            ("int4-per-channel", new[] { 260 }),
            ("int8-per-channel", new[] { 644 }),
            ("int8-g32", new[] { 544 }),
            ("fp8-per-channel", new[] { 516 }),
            ("fp8-g64", new[] { 576 }),
            ("mxfp4", new[] { 352, 1056 }),
            ("nvfp4", new[] { 400, 1040 }),
        })
        foreach (int c in columns)
        foreach (int batch in new[] { 1, 3, 8, 16 })
        {
            data.Add(scheme, c, batch);
        }

        return data;
    }

    internal static RtnOptions Options(string scheme) => scheme switch
    {
        "int4-g128" => RtnOptions.W4Group128,
        "int4-g128-full" => RtnOptions.W4Group128 with { SymmetricRange = SymmetricRange.Full },
        "int4-g128-asymmetric" => RtnOptions.W4Group128 with { Symmetric = false },
        "int8-per-channel-asymmetric" => RtnOptions.W8PerChannel with { Symmetric = false },
        "int4-per-channel" => RtnOptions.W4Group128 with { Granularity = Granularity.PerChannel },
        "int8-per-channel" => RtnOptions.W8PerChannel,
        "int8-g32" => RtnOptions.W8PerChannel with { Granularity = Granularity.PerGroup(32) },
        "fp8-per-channel" => RtnOptions.Fp8PerChannel,
        "fp8-g64" => RtnOptions.Fp8PerChannel with { Granularity = Granularity.PerGroup(64) },
        "mxfp4" => RtnOptions.Mxfp4,
        "nvfp4" => RtnOptions.Nvfp4,
        _ => throw new ArgumentOutOfRangeException(nameof(scheme)),
    };

    /// <summary>Gaussian weights with outliers (every 97th ×40) and a zero row.</summary>
    internal static DenseTensor Weight(int rows, int columns, int seed)
    {
        float[] values = RandomData.Gaussian(rows * columns, seed, 0.02f);
        for (int i = 0; i < values.Length; i += 97)
        {
            values[i] *= 40;
        }

        var weight = new DenseTensor(values, rows, columns);
        weight.Row(rows / 3).Clear();
        return weight;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Multiply_MatchesFloat64ProductOfTheDecompressedWeight(string scheme, int columns, int batch)
    {
        int seed = HashCode.Combine(scheme, columns, batch) & 0x7FFF_FFFF;
        QuantizedTensor weight = Options(scheme).CreateCompressor().Quantize(Weight(Rows, columns, seed));
        float[] x = RandomData.Gaussian(batch * columns, seed + 1);
        var y = new float[batch * Rows + 5];
        Array.Fill(y, float.NaN);

        using var layer = new GpuQuantizedMatrixMultiply(_gpu, weight);
        layer.Multiply(x, batch, y);

        AssertClose(weight, x, batch, y, scheme);
        Assert.All(y[(batch * Rows)..], v => Assert.True(float.IsNaN(v), "the span past batch × rows was written"));
    }

    [Fact]
    public void DeviceViews_MatchTheHostOverload_AndRunAgainWithTheSameResult()
    {
        const int columns = 384, batch = 4;
        QuantizedTensor weight = RtnOptions.Nvfp4.CreateCompressor().Quantize(Weight(Rows, columns, 11));
        float[] x = RandomData.Gaussian(batch * columns, 12);
        using var layer = new GpuQuantizedMatrixMultiply(_gpu, weight);
        var expected = new float[batch * Rows];
        layer.Multiply(x, batch, expected);

        // X at an offset of 8 floats inside a larger buffer (16-byte aligned), Y poisoned.
        using MemoryBuffer1D<float, Stride1D.Dense> input = _gpu.Accelerator.Allocate1D<float>(8 + x.Length);
        using MemoryBuffer1D<float, Stride1D.Dense> output = _gpu.Accelerator.Allocate1D<float>(batch * Rows);
        input.View.SubView(8, x.Length).BaseView.CopyFromCPU(x);
        output.View.BaseView.CopyFromCPU(Enumerable.Repeat(float.NaN, batch * Rows).ToArray());
        for (int run = 0; run < 2; run++)
        {
            layer.Multiply(input.View.BaseView.SubView(8, x.Length), batch, output.View.BaseView);
            var actual = new float[batch * Rows];
            output.View.BaseView.CopyToCPU(actual);
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void BadCalls_AreRefused()
    {
        QuantizedTensor weight = RtnOptions.W4Group128.CreateCompressor().Quantize(Weight(Rows, 256, 5));
        var layer = new GpuQuantizedMatrixMultiply(_gpu, weight);
        var x = new float[2 * 256];
        var y = new float[2 * Rows];
        BadInput.AssertRefused("x too short", () => layer.Multiply(x.AsSpan(0, 2 * 256 - 1), 2, y), typeof(ArgumentException), "x", "needed");
        BadInput.AssertRefused("y too short", () => layer.Multiply(x, 2, y.AsSpan(0, 2 * Rows - 1)), typeof(ArgumentException), "y", "needed");
        BadInput.AssertRefused("batch 0", () => layer.Multiply(x, 0, y), typeof(ArgumentException), "batch", "outside 1..16");
        BadInput.AssertRefused("batch 17", () => layer.Multiply(new float[17 * 256], 17, new float[17 * Rows]), typeof(ArgumentException), "batch", "outside 1..16");
        using (MemoryBuffer1D<float, Stride1D.Dense> buffer = _gpu.Accelerator.Allocate1D<float>(1 + x.Length))
        {
            BadInput.AssertRefused("misaligned X view", () => layer.Multiply(buffer.View.BaseView.SubView(1, x.Length), 2, buffer.View.BaseView), typeof(ArgumentException), "x", "multiple of 4");
        }

        layer.Dispose();
        layer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => layer.Multiply(x, 2, y));
    }

    [Theory]
    [InlineData("nf4")]
    [InlineData("fp4-float-scales")]
    [InlineData("int3")]
    [InlineData("fp8-e5m2")]
    [InlineData("fp8-block")]
    [InlineData("mxfp8-e4m3")]
    [InlineData("int4-g96")]
    public void UnsupportedWeights_ThrowNotSupported_NamingTheFormat(string scheme)
    {
        RtnOptions options = scheme switch
        {
            "nf4" => RtnOptions.Nf4,
            "fp4-float-scales" => RtnOptions.Fp8PerChannel with { Format = NumberFormat.Fp4E2M1 },
            "int3" => RtnOptions.W4Group128 with { Format = NumberFormat.Int3 },
            "fp8-e5m2" => RtnOptions.Fp8PerChannel with { Format = NumberFormat.Fp8E5M2 },
            "fp8-block" => RtnOptions.Fp8Block128,
            "mxfp8-e4m3" => new RtnOptions { Format = NumberFormat.Mxfp8E4M3 },
            _ => RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(96) },
        };
        QuantizedTensor weight = options.CreateCompressor().Quantize(Weight(128, 384, 3));
        var e = Assert.Throws<NotSupportedException>(() => new GpuQuantizedMatrixMultiply(_gpu, weight));
        Assert.Contains(options.Format.Name, e.Message, StringComparison.Ordinal);
        Assert.False(GpuQuantizedMatrixMultiply.IsSupported(weight, out string reason));
        Assert.Equal(e.Message, reason);
    }

    [Fact]
    public void ColumnsNotAMultipleOfFour_ThrowNotSupported()
    {
        QuantizedTensor weight = RtnOptions.W8PerChannel.CreateCompressor().Quantize(Weight(8, 70, 4));
        var e = Assert.Throws<NotSupportedException>(() => new GpuQuantizedMatrixMultiply(_gpu, weight));
        Assert.Contains("multiple of 4", e.Message, StringComparison.Ordinal);
    }

    /// <summary>|y − Σ x·ŵ| ≤ 1e-5·Σ|x·ŵ| for every output, the reference in float64 from the CPU decompression.</summary>
    internal static void AssertClose(QuantizedTensor weight, float[] x, int batch, float[] y, string label)
    {
        float[] w = weight.Decompress().Span.ToArray();
        int rows = weight.Rows, columns = weight.Columns;
        for (int b = 0; b < batch; b++)
        for (int r = 0; r < rows; r++)
        {
            double sum = 0, magnitude = 0;
            for (int c = 0; c < columns; c++)
            {
                double term = (double)x[b * columns + c] * w[r * columns + c];
                sum += term;
                magnitude += Math.Abs(term);
            }

            float actual = y[b * rows + r];
            Assert.True(Math.Abs(actual - sum) <= 1e-5 * magnitude + 1e-30,
                $"{label}: y[{b}, {r}] = {actual:R}, reference {sum:R} (Σ|x·w| = {magnitude:R})");
        }
    }
}
