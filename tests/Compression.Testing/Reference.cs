// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Testing;

/// <summary>Plain float64 reference implementations the fast paths are checked against.</summary>
public static class Reference
{
    /// <summary>H = 2/n · Σ x xᵀ over all rows, in float64, with the obvious triple loop.</summary>
    public static double[] Hessian(IReadOnlyList<float[]> batches, int columns)
    {
        var sum = new double[columns * columns];
        long n = 0;
        foreach (float[] batch in batches)
        {
            int rows = batch.Length / columns;
            for (int r = 0; r < rows; r++)
            {
                for (int i = 0; i < columns; i++)
                {
                    for (int j = 0; j < columns; j++)
                    {
                        sum[i * columns + j] += (double)batch[r * columns + i] * batch[r * columns + j];
                    }
                }
            }

            n += rows;
        }

        return sum.Select(s => n == 0 ? 0 : 2 * s / n).ToArray();
    }

    /// <summary>‖a − b‖_F / ‖b‖_F.</summary>
    public static double RelativeFrobeniusError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        double error = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = actual[i] - expected[i];
            error += d * d;
            norm += expected[i] * expected[i];
        }

        return Math.Sqrt(error / norm);
    }

    /// <summary>The largest element-wise relative error max|a−e| / max(|e|, floor), for a report.</summary>
    public static double MaxRelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected, double floor)
    {
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]) / Math.Max(Math.Abs(expected[i]), floor));
        }

        return worst;
    }

    /// <summary>Cholesky of H + λI, explicit inverse, upper Cholesky factor of the inverse; null when not positive definite
    /// (the GPTQ and SparseGPT references both start from it).</summary>
    public static double[]? UpperFactorOfInverse(double[] h, int n, double lambda)
    {
        var a = (double[])h.Clone();
        for (int i = 0; i < n; i++)
        {
            a[i * n + i] += lambda;
        }

        double[]? l = Cholesky(a, n);
        if (l is null)
        {
            return null;
        }

        // inverse = L⁻ᵀ·L⁻¹ through solving L·Y = I then Lᵀ·X = Y.
        var inverse = new double[n * n];
        for (int c = 0; c < n; c++)
        {
            var y = new double[n];
            for (int i = 0; i < n; i++)
            {
                double s = i == c ? 1 : 0;
                for (int k = 0; k < i; k++)
                {
                    s -= l[i * n + k] * y[k];
                }

                y[i] = s / l[i * n + i];
            }

            for (int i = n - 1; i >= 0; i--)
            {
                double s = y[i];
                for (int k = i + 1; k < n; k++)
                {
                    s -= l[k * n + i] * inverse[k * n + c];
                }

                inverse[i * n + c] = s / l[i * n + i];
            }
        }

        double[]? l2 = Cholesky(inverse, n);
        if (l2 is null)
        {
            return null;
        }

        var u = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = i; j < n; j++)
            {
                u[i * n + j] = l2[j * n + i];
            }
        }

        return u;
    }

    private static double[]? Cholesky(double[] a, int n)
    {
        var l = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            double s = a[j * n + j];
            for (int k = 0; k < j; k++)
            {
                s -= l[j * n + k] * l[j * n + k];
            }

            if (!(s > 0))
            {
                return null;
            }

            l[j * n + j] = Math.Sqrt(s);
            for (int i = j + 1; i < n; i++)
            {
                double t = a[i * n + j];
                for (int k = 0; k < j; k++)
                {
                    t -= l[i * n + k] * l[j * n + k];
                }

                l[i * n + j] = t / l[j * n + j];
            }
        }

        return l;
    }
}
