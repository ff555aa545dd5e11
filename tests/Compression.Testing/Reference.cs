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
}
