using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Quantization.Tests;

/// <summary>GPTQ's lazy-update products C −= A·B on ILGPU's CPU simulator: the 128×128-tile kernel against the
/// 64×64-tile one (the same sums in the same order, so the same bits) and both against a float64 loop.</summary>
[Collection("Gpu")]
public sealed class GptqUpdateKernelTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public void Dispose() => _gpu.Dispose();

    // Shapes not multiples of the tiles or of the 8-value step, a single k, and strides wider than the views (as in
    // the engine, where A, B and C are windows of rows × columns matrices).
    [Theory]
    [InlineData(150, 230, 70, 0)]
    [InlineData(67, 200, 128, 5)]
    [InlineData(130, 129, 1, 3)]
    [InlineData(1, 300, 13, 0)]
    public void WideKernel_EqualsTheTileKernel_BitForBit_AndFloat64(int m, int n, int k, int pad)
    {
        int aStride = k + pad, bStride = n + pad, cStride = n + pad;
        var random = new Random(HashCode.Combine(m, n, k, pad));
        float[] a = Values(m * aStride, random), b = Values(k * bStride, random), c = Values(m * cStride, random);
        float[] tiles = Run(GptqDeviceKernels.MultiplySubtract, GptqDeviceKernels.Tile, a, aStride, b, bStride, c, cStride, m, n, k);
        float[] wide = Run(GptqDeviceKernels.MultiplySubtractWide, GptqDeviceKernels.WideTile, a, aStride, b, bStride, c, cStride, m, n, k);
        Assert.Equal(tiles.Select(BitConverter.SingleToInt32Bits), wide.Select(BitConverter.SingleToInt32Bits));

        double error = 0, norm = 0;
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < cStride; j++)
            {
                if (j >= n)
                {
                    // Padding between rows is never written.
                    Assert.Equal(BitConverter.SingleToInt32Bits(c[i * cStride + j]), BitConverter.SingleToInt32Bits(wide[i * cStride + j]));
                    continue;
                }

                double product = 0;
                for (int s = 0; s < k; s++)
                {
                    product += (double)a[i * aStride + s] * b[s * bStride + j];
                }

                double expected = c[i * cStride + j] - product;
                error += (wide[i * cStride + j] - expected) * (wide[i * cStride + j] - expected);
                norm += product * product;
            }
        }

        // Float32 sums of at most 128 products: about √k·2⁻²⁴ relative, far inside 1e-5.
        Assert.True(Math.Sqrt(error / norm) < 1e-5, $"relative error {Math.Sqrt(error / norm):E2}");
    }

    private float[] Run(Action<ArrayView<float>, int, ArrayView<float>, int, ArrayView<float>, int, int, int, int> kernel, int tile,
        float[] a, int aStride, float[] b, int bStride, float[] c, int cStride, int m, int n, int k)
    {
        Accelerator accelerator = _gpu.Accelerator;
        var loaded = accelerator.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>, int, ArrayView<float>, int, int, int, int>(kernel);
        using MemoryBuffer1D<float, Stride1D.Dense> da = accelerator.Allocate1D(a), db = accelerator.Allocate1D(b), dc = accelerator.Allocate1D(c);
        var grid = new Index2D((n + tile - 1) / tile, (m + tile - 1) / tile);
        loaded(new KernelConfig(grid, new Index2D(GptqDeviceKernels.Threads, GptqDeviceKernels.Threads)), da.View, aStride, db.View, bStride, dc.View, cStride, m, n, k);
        accelerator.Synchronize();
        return dc.GetAsArray1D();
    }

    private static float[] Values(int length, Random random)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return values;
    }
}
