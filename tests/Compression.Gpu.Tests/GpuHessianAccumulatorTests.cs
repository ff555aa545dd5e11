using Compression.Calibration;
using Compression.Gpu.Calibration;
using Compression.Gpu.Runtime;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Gpu.Tests;

/// <summary>The device Hessian on ILGPU's CPU simulator against the CPU accumulator (float64 sums).</summary>
[Collection("Gpu")]
public sealed class GpuHessianAccumulatorTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public void Dispose() => _gpu.Dispose();

    [Theory]
    [InlineData(1, new[] { 3 })]
    [InlineData(64, new[] { 16, 1 })]
    [InlineData(70, new[] { 17, 40, 5 })]
    [InlineData(130, new[] { 33, 64 })]
    public void DeviceHessian_MatchesTheCpuAccumulator(int columns, int[] batches) => Compare(columns, batches, kernel: null);

    [Theory]
    [InlineData(1, new[] { 3 })]
    [InlineData(130, new[] { 9, 17 })]
    [InlineData(260, new[] { 5 })]
    public void DeviceHessian_WideTiles_MatchTheCpuAccumulator(int columns, int[] batches) => Compare(columns, batches, SyrkKernel.Tile128);

    // Rows not a multiple of the 8-row step, a single row, and more steps than the two buffers.
    [Theory]
    [InlineData(1, new[] { 3 })]
    [InlineData(130, new[] { 9, 17, 1 })]
    [InlineData(260, new[] { 5, 24 })]
    public void DeviceHessian_PipelinedTiles_MatchTheCpuAccumulator(int columns, int[] batches) => Compare(columns, batches, SyrkKernel.Pipelined128);

    // The 16-byte-read kernel on the same shapes, and with split K.
    [Theory]
    [InlineData(1, new[] { 3 }, null)]
    [InlineData(130, new[] { 9, 17, 1 }, null)]
    [InlineData(260, new[] { 5, 24 }, null)]
    [InlineData(200, new[] { 16 }, 16)]
    [InlineData(70, new[] { 37, 5 }, 3)]
    public void DeviceHessian_PipelinedQuadTiles_MatchTheCpuAccumulator(int columns, int[] batches, int? splits) =>
        Compare(columns, batches, SyrkKernel.Pipelined128Quads, splits);

    // Split K: uneven last split, more splits than 8-row steps, and a partial buffer reused by a later, larger batch.
    [Theory]
    [InlineData(70, new[] { 37, 5 }, 3)]
    [InlineData(130, new[] { 9, 40 }, 5)]
    [InlineData(200, new[] { 16 }, 16)]
    public void DeviceHessian_SplitK_MatchesTheCpuAccumulator(int columns, int[] batches, int splits) =>
        Compare(columns, batches, SyrkKernel.Pipelined128, splits);

    [Fact]
    public void DeviceHessian_EveryKernel_AddsTheSameProducts()
    {
        // The kernels differ only in tiling and staging: each sums the same products in the same order per value.
        DenseTensor x = RandomData.GaussianMatrix(37, 150, seed: 11);
        double[]? first = null;
        foreach (SyrkKernel kernel in Enum.GetValues<SyrkKernel>())
        {
            using var gpu = new GpuHessianAccumulator(_gpu, 150) { Kernel = kernel, Splits = 1 };
            gpu.Add(x);
            double[] h = gpu.GetHessian();
            first ??= h;
            Assert.Equal(first, h);
        }
    }

    [Fact]
    public void CuBlasRoute_WithoutCuda_FallsBackToThePipelinedKernel()
    {
        // The simulator has no cuBLAS: the default and the forced cuBLAS kernels run our own, with its results (the
        // quad-reading kernel, which sums exactly as the scalar-reading one).
        Assert.Null(_gpu.CuBlas.Handle);
        Assert.Contains("not a CUDA accelerator", _gpu.CuBlas.Description, StringComparison.Ordinal);
        DenseTensor x = RandomData.GaussianMatrix(29, 140, seed: 23);
        using var reference = new GpuHessianAccumulator(_gpu, 140) { Kernel = SyrkKernel.Pipelined128 };
        reference.Add(x);
        double[] expected = reference.GetHessian();
        foreach (SyrkKernel? kernel in new SyrkKernel?[] { null, SyrkKernel.CuBlasGemm, SyrkKernel.CuBlasSyrk })
        {
            using var gpu = new GpuHessianAccumulator(_gpu, 140) { Kernel = kernel };
            Assert.Equal(SyrkKernel.Pipelined128Quads, gpu.EffectiveKernel);
            gpu.Add(x);
            Assert.Equal(expected, gpu.GetHessian());
        }
    }

    private void Compare(int columns, int[] batches, SyrkKernel? kernel, int? splits = null)
    {
        var cpu = new HessianAccumulator(columns);
        using var gpu = new GpuHessianAccumulator(_gpu, columns) { Kernel = kernel, Splits = splits };
        int seed = columns;
        foreach (int rows in batches)
        {
            DenseTensor x = RandomData.GaussianMatrix(rows, columns, seed++);
            for (int i = 0; i < x.Length; i += 7)
            {
                x.Span[i] *= 10;                  // uneven magnitudes across features
            }

            cpu.Add(x);
            gpu.Add(x);
        }

        Assert.Equal(cpu.SampleCount, gpu.SampleCount);
        double[] expected = cpu.GetHessian(), actual = gpu.GetHessian();
        double error = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            error += (expected[i] - actual[i]) * (expected[i] - actual[i]);
            norm += expected[i] * expected[i];
        }

        Assert.True(Math.Sqrt(error / norm) < 1e-5, $"relative Frobenius error {Math.Sqrt(error / norm):E2}");
        for (int i = 0; i < columns; i++)
        {
            for (int j = 0; j < i; j++)
            {
                Assert.Equal(actual[i * columns + j], actual[j * columns + i]);
            }
        }
    }

    [Fact]
    public void Reset_AndBadInput()
    {
        using var gpu = new GpuHessianAccumulator(_gpu, 8);
        gpu.Add(RandomData.GaussianMatrix(4, 8, seed: 1));
        gpu.Reset();
        Assert.Equal(0, gpu.SampleCount);
        Assert.All(gpu.GetHessian(), v => Assert.Equal(0.0, v));
        Assert.Throws<ArgumentException>("activations", () => gpu.Add(RandomData.GaussianMatrix(4, 9, seed: 2)));
        DenseTensor nan = RandomData.GaussianMatrix(2, 8, seed: 3);
        nan[1, 3] = float.NaN;
        Assert.Throws<ArgumentException>("activations", () => gpu.Add(nan));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GpuHessianAccumulator(_gpu, 0));
    }
}
