using Compression.Gpu.Runtime;
using Compression.LowRank.Gpu;
using Compression.Tensors;
using Compression.Testing;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.LowRank.Tests;

/// <summary>
/// The device orthonormalisation of the randomized SVD (float64 Gram kernel, shifted CholeskyQR3, host fallback) on
/// ILGPU's CPU simulator, against float64 loops.
/// </summary>
[Collection("Gpu")]
public sealed class GpuOrthonormalizerTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public void Dispose() => _gpu.Dispose();

    [Theory]
    [InlineData(5, 40, true)]
    [InlineData(17, 33, true)]
    [InlineData(17, 33, false)]
    [InlineData(33, 70, false)]
    public void Gram_EqualsAFloat64Loop(int k, int length, bool symmetric)
    {
        float[] x = RandomData.Gaussian(k * length, seed: k), y = symmetric ? x : RandomData.Gaussian(k * length, seed: k + 1);
        using MemoryBuffer1D<float, Stride1D.Dense> xd = _gpu.Accelerator.Allocate1D(x), yd = _gpu.Accelerator.Allocate1D(y);
        using var orthonormalizer = new GpuOrthonormalizer(_gpu, k, length);
        var c = new double[k * k];
        orthonormalizer.Gram(xd.View, yd.View, length, symmetric).SubView(0, c.Length).CopyToCPU(c);
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                double expected = 0, magnitude = 0;
                for (int l = 0; l < length; l++)
                {
                    expected += (double)x[i * length + l] * y[j * length + l];
                    magnitude += Math.Abs((double)x[i * length + l] * y[j * length + l]);
                }

                // Products of float32 values are exact in float64; only the summation order differs.
                Assert.True(Math.Abs(c[i * k + j] - expected) <= 1e-14 * magnitude, $"C[{i},{j}] = {c[i * k + j]}, expected {expected}");
            }
        }
    }

    [Theory]
    [InlineData(12, 200, 1e2)]
    [InlineData(12, 200, 1e5)]
    [InlineData(30, 97, 1e3)]
    public void Orthonormalise_IllConditionedPanel_GivesOrthonormalRowsSpanningIt(int k, int length, double condition)
    {
        float[] panel = IllConditioned(k, length, condition, seed: k);
        float[] q = Orthonormalised(panel, k, length, out int fallbacks);
        Assert.Equal(0, fallbacks);
        AssertOrthonormal(q, k, length, 1e-5);
        AssertSpans(q, panel, k, length, 1e-4);
    }

    [Fact]
    public void Orthonormalise_RankDeficientPanel_FallsBackToTheHost_AndStillGivesAnOrthonormalBasis()
    {
        const int k = 8, length = 64;
        float[] panel = IllConditioned(k, length, 10, seed: 3);
        Array.Copy(panel, 0, panel, 5 * length, length);           // row 5 = row 0
        Array.Clear(panel, 7 * length, length);                     // row 7 = 0
        float[] q = Orthonormalised(panel, k, length, out int fallbacks);
        Assert.Equal(1, fallbacks);
        AssertOrthonormal(q, k, length, 1e-5);
        AssertSpans(q, panel, k, length, 1e-4);
    }

    [Fact]
    public void Decompose_LowRankAndZeroMatrices_MatchTheCpu()
    {
        // Rank 3 with a sketch of 13: the range finder's panels are rank-deficient but for rounding noise.
        float[] a = new float[60 * 45];
        float[] left = RandomData.Gaussian(60 * 3, seed: 1), right = RandomData.Gaussian(3 * 45, seed: 2);
        for (int i = 0; i < 60; i++)
        {
            for (int j = 0; j < 45; j++)
            {
                for (int r = 0; r < 3; r++)
                {
                    a[i * 45 + j] += left[i * 3 + r] * right[r * 45 + j] * (r + 1);
                }
            }
        }

        var options = new RandomizedSvdOptions { Seed = 4 };
        var w = new DenseTensor(a, 60, 45);
        var device = new GpuRandomizedSvd(_gpu, options);
        SingularValueDecomposition gpu = device.Decompose(w, 3);
        SingularValueDecomposition cpu = SingularValueDecomposition.Randomized(w, 3, options with { Device = ComputeDevice.Cpu });
        for (int j = 0; j < 3; j++)
        {
            Assert.Equal(cpu.SingularValues[j], gpu.SingularValues[j], cpu.SingularValues[0] * 1e-5);
        }

        // The float32 noise of the products keeps those panels of full rank numerically: the shifted first pass
        // handles them on the device. An all-zero matrix gives an exactly singular Gram matrix: the host completes it.
        SingularValueDecomposition zero = device.Decompose(new DenseTensor(60, 45), 2);
        Assert.True(device.HostFallbacks > 0);
        Assert.All(zero.SingularValues, s => Assert.Equal(0, s));
    }

    private float[] Orthonormalised(float[] panel, int k, int length, out int fallbacks)
    {
        using MemoryBuffer1D<float, Stride1D.Dense> device = _gpu.Accelerator.Allocate1D(panel);
        using var orthonormalizer = new GpuOrthonormalizer(_gpu, k, length);
        orthonormalizer.Orthonormalise(device.View, length, CancellationToken.None);
        fallbacks = orthonormalizer.HostFallbacks;
        var q = new float[panel.Length];
        device.View.CopyToCPU(q);
        return q;
    }

    /// <summary>Rows G·diag(σ)·H with σ spread geometrically over <paramref name="condition"/>.</summary>
    private static float[] IllConditioned(int k, int length, double condition, int seed)
    {
        float[] g = RandomData.Gaussian(k * length, seed);
        var p = new float[k * length];
        for (int i = 0; i < k; i++)
        {
            double sigma = Math.Pow(condition, -(double)i / Math.Max(1, k - 1));
            for (int l = 0; l < length; l++)
            {
                p[i * length + l] = (float)(g[i * length + l] * sigma);
            }
        }

        return p;
    }

    private static void AssertOrthonormal(float[] q, int k, int length, double tolerance)
    {
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                double dot = 0;
                for (int l = 0; l < length; l++)
                {
                    dot += (double)q[i * length + l] * q[j * length + l];
                }

                Assert.True(Math.Abs(dot - (i == j ? 1 : 0)) <= tolerance, $"q{i}·q{j} = {dot}");
            }
        }
    }

    /// <summary>Every row of the panel lies in the span of q: its residual after projection is tiny.</summary>
    private static void AssertSpans(float[] q, float[] panel, int k, int length, double tolerance)
    {
        for (int i = 0; i < k; i++)
        {
            double[] residual = new double[length];
            double norm = 0;
            for (int l = 0; l < length; l++)
            {
                residual[l] = panel[i * length + l];
                norm += residual[l] * residual[l];
            }

            for (int r = 0; r < k; r++)
            {
                double dot = 0;
                for (int l = 0; l < length; l++)
                {
                    dot += residual[l] * q[r * length + l];
                }

                for (int l = 0; l < length; l++)
                {
                    residual[l] -= dot * q[r * length + l];
                }
            }

            double left = Math.Sqrt(residual.Sum(v => v * v));
            Assert.True(left <= tolerance * Math.Sqrt(norm) + 1e-30, $"row {i}: residual {left} of {Math.Sqrt(norm)}");
        }
    }
}
