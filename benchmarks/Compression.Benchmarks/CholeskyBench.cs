using BenchmarkDotNet.Attributes;
using Compression.Numerics;

namespace Compression.Benchmarks;

/// <summary>
/// float64 <see cref="Cholesky"/> on a 2048 × 2048 SPD matrix (factor; upper factor of the inverse as GPTQ needs it)
/// against the naive unblocked Cholesky–Banachiewicz loop at 256, in the same run.
/// </summary>
/// <remarks>
/// Flops (the standard LAPACK counts): n³/3 for the factorisation, 2n³/3 for
/// <see cref="Cholesky.TryUpperFactorOfInverse"/> (factor n³/3 + triangular inverse n³/3; the GEMM-based inverse
/// executes about n³ in all because it multiplies the triangles as full blocks). Each call first copies the input (in-place algorithm): 32 MiB at n = 2048, about 2–3 ms, included.
/// float64 peak of the 2-core Zen 4 VM: 2 cores × 8 lanes × 2 flops × 2.6 GHz = 83 GFLOP/s.
/// </remarks>
[MemoryDiagnoser]
public class CholeskyBench
{
    private double[] _a256 = [], _work256 = [];
    private double[] _a2048 = [], _work2048 = [], _upper2048 = [];

    [GlobalSetup]
    public void Setup()
    {
        _a256 = Spd(256, seed: 1);
        _work256 = new double[_a256.Length];
        _a2048 = Spd(2048, seed: 2);
        _work2048 = new double[_a2048.Length];
        _upper2048 = new double[_a2048.Length];
    }

    /// <summary>The reference: unblocked, single-threaded Cholesky–Banachiewicz with scalar dot products, n = 256.</summary>
    [Benchmark(Baseline = true)]
    public bool NaiveCholesky256()
    {
        const int N = 256;
        double[] a = _work256;
        _a256.CopyTo(a, 0);
        for (int i = 0; i < N; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double s = a[i * N + j];
                for (int p = 0; p < j; p++)
                {
                    s -= a[i * N + p] * a[j * N + p];
                }

                if (i == j)
                {
                    if (!(s > 0))
                    {
                        return false;
                    }

                    a[i * N + i] = Math.Sqrt(s);
                }
                else
                {
                    a[i * N + j] = s / a[j * N + j];
                }
            }
        }

        return true;
    }

    [Benchmark]
    public bool TryFactor256()
    {
        _a256.CopyTo(_work256, 0);
        return Cholesky.TryFactor(_work256, 256);
    }

    [Benchmark]
    public bool TryFactor2048()
    {
        _a2048.CopyTo(_work2048, 0);
        return Cholesky.TryFactor(_work2048, 2048);
    }

    [Benchmark]
    public bool TryUpperFactorOfInverse2048() => Cholesky.TryUpperFactorOfInverse(_a2048, 2048, _upper2048);

    private static double[] Spd(int n, int seed)
    {
        // A = B·Bᵀ/n + I: well conditioned, like a damped Hessian.
        var random = new Random(seed);
        double[] b = Enumerable.Range(0, n * n).Select(_ => random.NextDouble() - 0.5).ToArray();
        double[] a = new double[n * n];
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.Transpose, n, n, n, 1.0 / n, b, n, b, n, 0.0, a, n);
        for (int i = 0; i < n; i++)
        {
            a[i * n + i] += 1;
        }

        return a;
    }
}
