using Compression.Gpu.Runtime;
using Compression.LowRank.Gpu;
using Compression.Testing;

namespace Compression.LowRank.Tests;

/// <summary>The device one-sided Jacobi SVD of the randomized SVD's small factor, on ILGPU's CPU simulator, against
/// the host's SVD and the definition.</summary>
[Collection("Gpu")]
public sealed class GpuJacobiSvdTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public void Dispose() => _gpu.Dispose();

    [Theory]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(33)]
    public void Schedule_PairsEveryTwoColumnsOnce_AndNoColumnTwiceInARound(int n)
    {
        int players = n + (n & 1);
        int[] schedule = GpuJacobiSvd.Schedule(n);
        var seen = new HashSet<(int, int)>();
        for (int round = 0; round < players - 1; round++)
        {
            var inRound = new HashSet<int>();
            for (int i = 0; i < players / 2; i++)
            {
                int p = schedule[(round * players / 2 + i) * 2], q = schedule[(round * players / 2 + i) * 2 + 1];
                Assert.True(p < q);
                Assert.True(inRound.Add(p) && inRound.Add(q), $"round {round} uses a column twice");
                if (q < n)
                {
                    Assert.True(seen.Add((p, q)), $"pair ({p}, {q}) twice");
                }
            }
        }

        Assert.Equal(n * (n - 1) / 2, seen.Count);
    }

    [Theory]
    [InlineData(5, 1)]
    [InlineData(17, 1e3)]
    [InlineData(40, 1e8)]
    public void Decompose_MatchesTheHostSvd_AndReconstructs(int n, double condition)
    {
        float[] g = RandomData.Gaussian(n * n, seed: n);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                // Columns scaled geometrically over the condition number, then mixed by the Gaussian.
                a[i * n + j] = g[i * n + j] * Math.Pow(condition, -(double)j / (n - 1));
            }
        }

        Assert.True(GpuJacobiSvd.TryDecompose(_gpu, a, n, out var device, CancellationToken.None));
        (double[] u, double[] s, double[] vt) = SingularValueDecomposition.DenseSvd(a, n, n);
        for (int j = 0; j < n; j++)
        {
            Assert.Equal(s[j], device.S[j], s[0] * 1e-12);
        }

        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double value = 0;
                for (int r = 0; r < n; r++)
                {
                    value += device.U[i * n + r] * device.S[r] * device.VT[r * n + j];
                }

                Assert.True(Math.Abs(value - a[i * n + j]) <= 1e-12 * s[0], $"A[{i},{j}]: {value} vs {a[i * n + j]}");
            }
        }

        // U and V orthonormal.
        for (int p = 0; p < n; p++)
        {
            for (int q = 0; q < n; q++)
            {
                double uu = 0, vv = 0;
                for (int i = 0; i < n; i++)
                {
                    uu += device.U[i * n + p] * device.U[i * n + q];
                    vv += device.VT[p * n + i] * device.VT[q * n + i];
                }

                Assert.Equal(p == q ? 1 : 0, uu, 1e-10);
                Assert.Equal(p == q ? 1 : 0, vv, 1e-12);
            }
        }
    }

    [Fact]
    public void Decompose_ZeroSingularValue_IsLeftToTheHost()
    {
        const int n = 6;
        float[] g = RandomData.Gaussian(n * n, seed: 3);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n - 1; j++)
            {
                a[i * n + j] = g[i * n + j];   // the last column stays zero
            }
        }

        Assert.False(GpuJacobiSvd.TryDecompose(_gpu, a, n, out _, CancellationToken.None));
    }
}
