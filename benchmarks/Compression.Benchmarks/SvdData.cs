using Compression.Numerics;
using Compression.Tensors;

namespace Compression.Benchmarks;

/// <summary>
/// The matrices every SVD benchmark decomposes, and the accuracy measure reported beside the times.
/// </summary>
/// <remarks>
/// A = G·diag(d)·Hᵀ / n with G and H n×n standard Gaussian and d_j = (1 + j/32)^-1.5: a Gaussian matrix whose
/// spectrum decays like a power law with a soft knee, as trained projection weights do (a few strong directions,
/// then a long slowly decaying tail). Nothing makes the spectrum exactly d, so the optimal rank-k error is measured,
/// not assumed (from the exact singular values). Float32, as a weight arrives; every method sees the same values.
/// </remarks>
internal static class SvdData
{
    public const int Rank = 128;

    /// <summary>
    /// libtorch's intra-op threads: <c>COMPRESSION_BENCH_TORCH_THREADS</c>, default 1. On the shared 2-core VM
    /// (load 60–80 from other builds) libtorch's OpenMP with 2 threads ran ten times slower than with one (the
    /// 1024² linalg.svd took 11.0 s against 1.1 s): its threads spin at barriers and starve when the cores are
    /// oversubscribed. Set 2 on a quiet machine.
    /// </summary>
    public static void SetTorchThreads()
    {
        string? value = Environment.GetEnvironmentVariable("COMPRESSION_BENCH_TORCH_THREADS");
        TorchSharp.torch.set_num_threads(int.TryParse(value, out int threads) && threads > 0 ? threads : 1);
    }

    /// <summary>The n×n test matrix for <paramref name="n"/>, the same for every process and method.</summary>
    public static DenseTensor Matrix(int n)
    {
        var random = new Random(n);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

        float[] g = new float[n * n];
        float[] h = new float[n * n];
        for (int i = 0; i < g.Length; i++)
        {
            g[i] = (float)Gauss();
            h[i] = (float)Gauss();
        }

        // Scale G's columns by d_j / n, then A = (G·D/n)·Hᵀ.
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                g[i * n + j] *= (float)(Math.Pow(1 + j / 32.0, -1.5) / n);
            }
        }

        var a = new DenseTensor(n, n);
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.Transpose, n, n, n, 1f, g, n, h, n, 0f, a.Span, n);
        return a;
    }

    /// <summary>‖A − U·diag(S)·Vᵀ‖_F / ‖A‖_F for the leading <paramref name="k"/> triplets; U is m×ldu row-major
    /// (its first k columns used), Vᵀ k×n row-major. Accumulated in float64 (sums of 16 M squares).</summary>
    public static double RelativeError(DenseTensor a, double[] u, int ldu, double[] s, double[] vt, int k)
    {
        int m = a.Rows, n = a.Columns;
        double[] us = new double[m * k];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < k; j++)
            {
                us[i * k + j] = u[i * ldu + j] * s[j];
            }
        }

        double[] r = new double[m * n];
        ReadOnlySpan<float> source = a.Span;
        double norm = 0;
        for (int i = 0; i < r.Length; i++)
        {
            r[i] = source[i];
            norm += r[i] * r[i];
        }

        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, m, n, k, -1.0, us, k, vt, n, 1.0, r, n);
        double residual = 0;
        foreach (double value in r)
        {
            residual += value * value;
        }

        return Math.Sqrt(residual / norm);
    }

    /// <summary>The Eckart–Young optimum √(Σ_{i≥k} σ_i²) / √(Σ σ_i²) from all singular values.</summary>
    public static double OptimalError(ReadOnlySpan<double> singularValues, int k)
    {
        double total = 0, tail = 0;
        for (int i = 0; i < singularValues.Length; i++)
        {
            double sq = singularValues[i] * singularValues[i];
            total += sq;
            if (i >= k)
            {
                tail += sq;
            }
        }

        return Math.Sqrt(tail / total);
    }
}
