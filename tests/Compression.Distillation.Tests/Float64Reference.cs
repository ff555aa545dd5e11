using Compression.Calibration;

namespace Compression.Distillation.Tests;

/// <summary>Float64 references: the objective, dampening and small dense solves, written as plain loops.</summary>
internal static class Float64Reference
{
    /// <summary>H + λ·mean(diag H)·I as a new array.</summary>
    public static double[] DampenedHessian(HessianAccumulator accumulator, double dampening)
    {
        double[] h = accumulator.GetHessian();
        int n = accumulator.Columns;
        double mean = 0;
        for (int j = 0; j < n; j++)
        {
            mean += h[j * n + j];
        }

        mean /= n;
        for (int j = 0; j < n; j++)
        {
            h[j * n + j] += dampening * mean;
        }

        return h;
    }

    /// <summary>tr((W − Ŵ)·H·(W − Ŵ)ᵀ) / tr(W·H·Wᵀ) by triple loops.</summary>
    public static double RelativeError(ReadOnlySpan<float> weight, ReadOnlySpan<float> approximation, double[] h, int columns)
    {
        int rows = weight.Length / columns;
        double numerator = 0, denominator = 0;
        var d = new double[columns];
        var w = new double[columns];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < columns; j++)
            {
                w[j] = weight[r * columns + j];
                d[j] = w[j] - approximation[r * columns + j];
            }

            numerator += QuadraticForm(d, h, columns);
            denominator += QuadraticForm(w, h, columns);
        }

        return numerator / denominator;
    }

    /// <summary>xᵀ·H·x.</summary>
    public static double QuadraticForm(double[] x, double[] h, int n)
    {
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            double row = 0;
            for (int j = 0; j < n; j++)
            {
                row += h[i * n + j] * x[j];
            }

            sum += x[i] * row;
        }

        return sum;
    }

    /// <summary>Solves A·x = b (A n × n, symmetric positive definite) by Gaussian elimination with partial pivoting.</summary>
    public static double[] Solve(double[] a, double[] b, int n)
    {
        double[] m = (double[])a.Clone(), x = (double[])b.Clone();
        for (int k = 0; k < n; k++)
        {
            int pivot = k;
            for (int i = k + 1; i < n; i++)
            {
                if (Math.Abs(m[i * n + k]) > Math.Abs(m[pivot * n + k]))
                {
                    pivot = i;
                }
            }

            if (pivot != k)
            {
                for (int j = 0; j < n; j++)
                {
                    (m[k * n + j], m[pivot * n + j]) = (m[pivot * n + j], m[k * n + j]);
                }

                (x[k], x[pivot]) = (x[pivot], x[k]);
            }

            for (int i = k + 1; i < n; i++)
            {
                double factor = m[i * n + k] / m[k * n + k];
                for (int j = k; j < n; j++)
                {
                    m[i * n + j] -= factor * m[k * n + j];
                }

                x[i] -= factor * x[k];
            }
        }

        for (int k = n - 1; k >= 0; k--)
        {
            double sum = x[k];
            for (int j = k + 1; j < n; j++)
            {
                sum -= m[k * n + j] * x[j];
            }

            x[k] = sum / m[k * n + k];
        }

        return x;
    }

    /// <summary>The lower Cholesky factor L of H = L·Lᵀ (H positive definite).</summary>
    public static double[] CholeskyLower(double[] h, int n)
    {
        var l = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double sum = h[i * n + j];
                for (int k = 0; k < j; k++)
                {
                    sum -= l[i * n + k] * l[j * n + k];
                }

                l[i * n + j] = i == j ? Math.Sqrt(sum) : sum / l[j * n + j];
            }
        }

        return l;
    }
}
