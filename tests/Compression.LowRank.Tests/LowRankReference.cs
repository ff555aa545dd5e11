namespace Compression.LowRank.Tests;

/// <summary>Float64 references independent of the library's SVD: one-sided Jacobi, and plain loops.</summary>
internal static class LowRankReference
{
    /// <summary>Singular values (descending) of the m×n row-major matrix by one-sided Jacobi rotations (Hestenes):
    /// slow and simple, accurate to a few ulps of the largest singular value.</summary>
    public static double[] SingularValues(double[] a, int m, int n)
    {
        if (m < n)
        {
            return SingularValues(Transpose(a, m, n), n, m);
        }

        // Columns of A, rotated pairwise until mutually orthogonal; their norms are then the singular values.
        double[][] columns = Enumerable.Range(0, n).Select(j => Enumerable.Range(0, m).Select(i => a[i * n + j]).ToArray()).ToArray();
        for (int sweep = 0; sweep < 60; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n - 1; p++)
            {
                for (int q = p + 1; q < n; q++)
                {
                    double alpha = 0, beta = 0, gamma = 0;
                    for (int i = 0; i < m; i++)
                    {
                        alpha += columns[p][i] * columns[p][i];
                        beta += columns[q][i] * columns[q][i];
                        gamma += columns[p][i] * columns[q][i];
                    }

                    if (gamma == 0 || Math.Abs(gamma) <= 1e-15 * Math.Sqrt(alpha * beta))
                    {
                        continue;
                    }

                    off = Math.Max(off, Math.Abs(gamma) / Math.Sqrt(alpha * beta));
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.Sign(zeta == 0 ? 1 : zeta) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta));
                    double c = 1 / Math.Sqrt(1 + t * t), s = c * t;
                    for (int i = 0; i < m; i++)
                    {
                        double x = columns[p][i], y = columns[q][i];
                        columns[p][i] = c * x - s * y;
                        columns[q][i] = s * x + c * y;
                    }
                }
            }

            if (off < 1e-15)
            {
                break;
            }
        }

        return columns.Select(c => Math.Sqrt(c.Sum(v => v * v))).OrderByDescending(v => v).ToArray();
    }

    public static double[] Transpose(double[] a, int m, int n)
    {
        double[] t = new double[a.Length];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                t[j * m + i] = a[i * n + j];
            }
        }

        return t;
    }

    public static double[] Multiply(double[] a, double[] b, int m, int k, int n)
    {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int p = 0; p < k; p++)
            {
                double x = a[i * k + p];
                for (int j = 0; j < n; j++)
                {
                    c[i * n + j] += x * b[p * n + j];
                }
            }
        }

        return c;
    }

    public static double SquaredDistance(double[] a, double[] b) => a.Zip(b, (x, y) => (x - y) * (x - y)).Sum();

    public static double SquaredNorm(IEnumerable<double> a) => a.Sum(x => x * x);

    /// <summary>tr(Δ·H·Δᵀ) for an m×n Δ and n×n H: the layer-output error ‖Δ·Xᵀ‖² when H = XᵀX.</summary>
    public static double OutputError(double[] delta, double[] h, int m, int n)
    {
        double total = 0;
        for (int r = 0; r < m; r++)
        {
            for (int i = 0; i < n; i++)
            {
                double di = delta[r * n + i];
                if (di == 0)
                {
                    continue;
                }

                double row = 0;
                for (int j = 0; j < n; j++)
                {
                    row += h[i * n + j] * delta[r * n + j];
                }

                total += di * row;
            }
        }

        return total;
    }

    /// <summary>An m×n matrix with singular values σ_i = decay^i (orthogonal factors from Gaussian QR), float64.</summary>
    public static double[] DecayingSpectrum(int m, int n, double decay, int seed)
    {
        int k = Math.Min(m, n);
        double[] u = Orthonormal(m, k, seed);
        double[] v = Orthonormal(n, k, seed + 7919);
        double[] a = new double[m * n];
        for (int p = 0; p < k; p++)
        {
            double s = Math.Pow(decay, p);
            for (int i = 0; i < m; i++)
            {
                double x = s * u[i * k + p];
                for (int j = 0; j < n; j++)
                {
                    a[i * n + j] += x * v[j * k + p];
                }
            }
        }

        return a;
    }

    // m×k with orthonormal columns by modified Gram–Schmidt run twice (enough for test data).
    private static double[] Orthonormal(int m, int k, int seed)
    {
        float[] g = Compression.Testing.RandomData.Gaussian(m * k, seed);
        double[] q = g.Select(x => (double)x).ToArray();
        for (int pass = 0; pass < 2; pass++)
        {
            for (int j = 0; j < k; j++)
            {
                for (int p = 0; p < j; p++)
                {
                    double dot = 0;
                    for (int i = 0; i < m; i++)
                    {
                        dot += q[i * k + p] * q[i * k + j];
                    }

                    for (int i = 0; i < m; i++)
                    {
                        q[i * k + j] -= dot * q[i * k + p];
                    }
                }

                double norm = Math.Sqrt(Enumerable.Range(0, m).Sum(i => q[i * k + j] * q[i * k + j]));
                for (int i = 0; i < m; i++)
                {
                    q[i * k + j] /= norm;
                }
            }
        }

        return q;
    }
}
