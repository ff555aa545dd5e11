namespace Compression.TorchSharp.Tests.Optimizers;

/// <summary>Float64 references for the GaLore tests: singular vectors by Jacobi, dense helpers on row-major arrays.</summary>
internal static class GaLoreReference
{
    /// <summary>The top-r left singular vectors of the m×n row-major <paramref name="g"/> (m×r row-major): the
    /// eigenvectors of G·Gᵀ of the r largest eigenvalues, by cyclic Jacobi rotations (slow, simple, accurate to a few
    /// ulps on the small matrices of these tests).</summary>
    public static double[] TopLeftSingularVectors(double[] g, int m, int n, int r)
    {
        var a = new double[m, m];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < m; j++)
            {
                double s = 0;
                for (int k = 0; k < n; k++)
                {
                    s += g[i * n + k] * g[j * n + k];
                }

                a[i, j] = s;
            }
        }

        var v = new double[m, m];
        for (int i = 0; i < m; i++)
        {
            v[i, i] = 1;
        }

        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0;
            for (int p = 0; p < m; p++)
            {
                for (int q = p + 1; q < m; q++)
                {
                    off += a[p, q] * a[p, q];
                }
            }

            if (off < 1e-30)
            {
                break;
            }

            for (int p = 0; p < m; p++)
            {
                for (int q = p + 1; q < m; q++)
                {
                    if (a[p, q] == 0)
                    {
                        continue;
                    }

                    double theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0)
                    {
                        t = 1;
                    }

                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < m; k++)
                    {
                        double akp = a[k, p], akq = a[k, q];
                        a[k, p] = c * akp - s * akq;
                        a[k, q] = s * akp + c * akq;
                    }

                    for (int k = 0; k < m; k++)
                    {
                        double apk = a[p, k], aqk = a[q, k];
                        a[p, k] = c * apk - s * aqk;
                        a[q, k] = s * apk + c * aqk;
                    }

                    for (int k = 0; k < m; k++)
                    {
                        double vkp = v[k, p], vkq = v[k, q];
                        v[k, p] = c * vkp - s * vkq;
                        v[k, q] = s * vkp + c * vkq;
                    }
                }
            }
        }

        int[] order = Enumerable.Range(0, m).OrderByDescending(i => a[i, i]).ToArray();
        var u = new double[m * r];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < r; j++)
            {
                u[i * r + j] = v[i, order[j]];
            }
        }

        return u;
    }

    /// <summary>A·Bᵀ… in general: C (p×q) = op(A)·op(B) on row-major arrays.</summary>
    public static double[] MatMul(double[] a, int aRows, int aColumns, bool transposeA, double[] b, int bRows, int bColumns, bool transposeB)
    {
        int p = transposeA ? aColumns : aRows, inner = transposeA ? aRows : aColumns, q = transposeB ? bRows : bColumns;
        var c = new double[p * q];
        for (int i = 0; i < p; i++)
        {
            for (int j = 0; j < q; j++)
            {
                double s = 0;
                for (int k = 0; k < inner; k++)
                {
                    double x = transposeA ? a[k * aColumns + i] : a[i * aColumns + k];
                    double y = transposeB ? b[j * bColumns + k] : b[k * bColumns + j];
                    s += x * y;
                }

                c[i * q + j] = s;
            }
        }

        return c;
    }

    public static double[] Transpose(double[] a, int rows, int columns)
    {
        var t = new double[a.Length];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < columns; j++)
            {
                t[j * rows + i] = a[i * columns + j];
            }
        }

        return t;
    }

    public static double MaxAbsDifference(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    public static double[] Gaussian(int count, int seed)
    {
        var random = new Random(seed);
        var values = new double[count];
        for (int i = 0; i < count; i++)
        {
            // Box–Muller: the tests need reproducible normals, not speed.
            values[i] = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        }

        return values;
    }
}
