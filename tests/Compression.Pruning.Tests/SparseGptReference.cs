using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Pruning.Tests;

/// <summary>
/// A plain float64 SparseGPT written straight from the paper: no blocks, no lazy updates, the inverse formed
/// explicitly (Cholesky, inverse, Cholesky again, as the reference implementation does), every pruned weight's update
/// applied to every later column of its row at once. The mask rule is the one under test: unstructured, at the first
/// column of each mask block the round(s·count) smallest w²/U_jj² of the block (all rows; ties in row-major order);
/// N:M, at the first column of each group the M − N smallest of the row's group (ties: lower column).
/// </summary>
internal static class SparseGptReference
{
    public sealed record Result(bool[] Keep, double[] Pruned, double Objective);

    public static Result Run(DenseTensor weight, double[] hessian, SparseGptOptions options)
    {
        int rows = weight.Rows, n = weight.Columns;
        double[] w = weight.Span.ToArray().Select(v => (double)v).ToArray();
        double[] h = (double[])hessian.Clone();
        for (int j = 0; j < n; j++)
        {
            if (h[j * n + j] == 0)
            {
                h[j * n + j] = 1;
                for (int r = 0; r < rows; r++)
                {
                    w[r * n + j] = 0;
                }
            }
        }

        double mean = Enumerable.Range(0, n).Average(j => h[j * n + j]);
        double[]? u = null;
        double percent = options.DampeningPercent;
        for (int attempt = 1; attempt <= options.MaxDampeningAttempts && u is null; attempt++, percent *= options.DampeningGrowth)
        {
            u = Reference.UpperFactorOfInverse(h, n, percent * mean);
        }

        if (u is null)
        {
            throw new InvalidOperationException("reference: not positive definite");
        }

        var keep = Enumerable.Repeat(true, rows * n).ToArray();
        bool semi = options.IsSemiStructured;
        int maskBlock = semi ? options.M : options.EffectiveMaskBlockSize;
        for (int j = 0; j < n; j++)
        {
            if (j % maskBlock == 0)
            {
                int width = Math.Min(maskBlock, n - j);
                if (semi)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        int row = r, start = j;
                        foreach (int t in Enumerable.Range(0, width).OrderBy(t => Score(w[row * n + start + t], u[(start + t) * n + start + t])).ThenBy(t => t)
                            .Take(options.M - options.N))
                        {
                            keep[r * n + j + t] = false;
                        }
                    }
                }
                else
                {
                    int count = rows * width, start = j;
                    int prune = (int)Math.Round(options.Sparsity * count, MidpointRounding.ToEven);
                    foreach (int i in Enumerable.Range(0, count).OrderBy(i => Score(w[i / width * n + start + i % width], u[(start + i % width) * (n + 1)]))
                        .ThenBy(i => i).Take(prune))
                    {
                        keep[i / width * n + j + i % width] = false;
                    }
                }
            }

            for (int r = 0; r < rows; r++)
            {
                if (keep[r * n + j])
                {
                    continue;
                }

                double error = w[r * n + j] / u[j * n + j];
                w[r * n + j] = 0;
                for (int k = j + 1; k < n; k++)
                {
                    w[r * n + k] -= error * u[j * n + k];
                }
            }
        }

        return new Result(keep, w, Objective(weight, w, hessian));
    }

    private static double Score(double w, double diagonal) => w * w / (diagonal * diagonal);

    /// <summary>½·Σ_rows δᵀHδ, plainly.</summary>
    public static double Objective(DenseTensor weight, double[] approximation, double[] hessian)
    {
        int rows = weight.Rows, n = weight.Columns;
        double total = 0;
        var d = new double[n];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < n; j++)
            {
                d[j] = weight[r, j] - approximation[r * n + j];
            }

            for (int a = 0; a < n; a++)
            {
                double s = 0;
                for (int b = 0; b < n; b++)
                {
                    s += hessian[a * n + b] * d[b];
                }

                total += d[a] * s;
            }
        }

        return total / 2;
    }

    public static double Objective(DenseTensor weight, DenseTensor approximation, double[] hessian) =>
        Objective(weight, approximation.Span.ToArray().Select(v => (double)v).ToArray(), hessian);

    /// <summary>
    /// Magnitude pruning for comparison: the weight with the smallest |w| pruned, exactly round(s·count) of the whole
    /// matrix (unstructured, ties in row-major order) or M − N of every row's group of M (N:M, ties: lower column).
    /// </summary>
    public static bool[] MagnitudeMask(DenseTensor weight, SparseGptOptions options)
    {
        int rows = weight.Rows, n = weight.Columns;
        float[] w = weight.Span.ToArray();
        var keep = Enumerable.Repeat(true, rows * n).ToArray();
        if (options.IsSemiStructured)
        {
            for (int r = 0; r < rows; r++)
            {
                for (int g = 0; g < n; g += options.M)
                {
                    int row = r, start = g;
                    foreach (int t in Enumerable.Range(0, options.M).OrderBy(t => MathF.Abs(w[row * n + start + t])).ThenBy(t => t).Take(options.M - options.N))
                    {
                        keep[r * n + g + t] = false;
                    }
                }
            }
        }
        else
        {
            int prune = (int)Math.Round(options.Sparsity * w.Length, MidpointRounding.ToEven);
            foreach (int i in Enumerable.Range(0, w.Length).OrderBy(i => MathF.Abs(w[i])).ThenBy(i => i).Take(prune))
            {
                keep[i] = false;
            }
        }

        return keep;
    }

    /// <summary>The weight with the pruned positions at 0.</summary>
    public static double[] Apply(DenseTensor weight, bool[] keep) =>
        weight.Span.ToArray().Select((v, i) => keep[i] ? (double)v : 0).ToArray();
}
