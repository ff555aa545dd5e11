using Compression.Gpu.Numerics;
using Compression.Gpu.Runtime;
using Compression.Numerics;
using Compression.Testing;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Gpu.Tests;

/// <summary>The device factor of the inverse on ILGPU's CPU simulator against the CPU's float64 one.</summary>
[Collection("Gpu")]
public sealed class GpuCholeskyTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public void Dispose() => _gpu.Dispose();

    /// <summary>A = BᵀB/k + 0.01·I for a k × n Gaussian B with uneven column scales: symmetric positive definite,
    /// condition number in the thousands.</summary>
    private static double[] SymmetricPositiveDefinite(int n, int seed)
    {
        int k = 2 * n + 3;
        float[] b = RandomData.GaussianMatrix(k, n, seed).Span.ToArray();
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int r = 0; r < k; r++)
                {
                    sum += (double)b[r * n + i] * b[r * n + j];
                }

                a[i * n + j] = sum / k * (1 + i % 5) * (1 + j % 5) + (i == j ? 0.01 : 0);
            }
        }

        return a;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(33)]
    [InlineData(100)]
    [InlineData(161)]
    public void DeviceFactor_MatchesTheCpuFactor(int n)
    {
        double[] a = SymmetricPositiveDefinite(n, seed: n);
        const double Lambda = 0.05;
        var damped = (double[])a.Clone();
        for (int i = 0; i < n; i++)
        {
            damped[i * n + i] += Lambda;
        }

        var expected = new double[n * n];
        Assert.True(Cholesky.TryUpperFactorOfInverse(damped, n, expected));

        using MemoryBuffer1D<double, Stride1D.Dense> input = _gpu.Accelerator.Allocate1D(a);
        using MemoryBuffer1D<float, Stride1D.Dense> upper = _gpu.Accelerator.Allocate1D<float>(n * n);
        Assert.True(GpuCholesky.TryUpperFactorOfInverse(_gpu, input.View, n, Lambda, upper.View));
        var actual = new float[n * n];
        upper.View.CopyToCPU(actual);

        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double e = j < i ? 0 : expected[i * n + j];
                Assert.True(Math.Abs(actual[i * n + j] - e) <= 1e-6 * scale + 1e-6 * Math.Abs(e),
                    $"U[{i},{j}] = {actual[i * n + j]}, CPU {e}");
            }
        }
    }

    [Fact]
    public void DeviceFactor_ReportsAMatrixThatIsNotPositiveDefinite()
    {
        const int N = 40;
        double[] a = SymmetricPositiveDefinite(N, seed: 3);
        a[20 * N + 20] = -5;                                      // a negative diagonal: indefinite
        using MemoryBuffer1D<double, Stride1D.Dense> input = _gpu.Accelerator.Allocate1D(a);
        using MemoryBuffer1D<float, Stride1D.Dense> upper = _gpu.Accelerator.Allocate1D<float>(N * N);
        Assert.False(GpuCholesky.TryUpperFactorOfInverse(_gpu, input.View, N, 0.0, upper.View));
        // Enough dampening repairs it.
        Assert.True(GpuCholesky.TryUpperFactorOfInverse(_gpu, input.View, N, 100.0, upper.View));
    }

    [Fact]
    public void DeviceFactor_RejectsShortViews()
    {
        using MemoryBuffer1D<double, Stride1D.Dense> input = _gpu.Accelerator.Allocate1D<double>(8);
        using MemoryBuffer1D<float, Stride1D.Dense> upper = _gpu.Accelerator.Allocate1D<float>(9);
        Assert.Throws<ArgumentException>(() => GpuCholesky.TryUpperFactorOfInverse(_gpu, input.View, 3, 0.0, upper.View));
        Assert.Throws<ArgumentOutOfRangeException>(() => GpuCholesky.TryUpperFactorOfInverse(_gpu, input.View, -1, 0.0, upper.View));
    }
}
