// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using System.Threading;
using System.Threading.Tasks;

namespace Compression.LowRank.Numerics;

/// <summary>
/// Thin Householder QR of a tall matrix stored column by column (column j at <c>[j·m, (j+1)·m)</c>), which is the
/// row-major storage of its transpose: the randomized SVD keeps its panels that way so that every reflector works on
/// contiguous memory.
/// </summary>
/// <remarks>Householder rather than Cholesky-QR or Gram–Schmidt because the panels of a randomized SVD are often
/// numerically rank-deficient (a matrix of exact rank below the sketch size, or power iterations that squeeze the
/// tail): reflectors stay orthogonal to working precision there, the other two lose orthogonality or fail.</remarks>
internal static class HouseholderQr
{
    // Below this many updated elements per reflector the thread pool costs more than it saves.
    private const long ParallelThreshold = 1 << 16;

    /// <summary>
    /// Factors the m×l matrix in place (m ≥ l): R in its upper triangle (R[i, j] at <c>a[j·m + i]</c>, i ≤ j), the
    /// reflectors' tails below the diagonal. Returns the reflectors' scales τ.
    /// </summary>
    public static double[] Factor(double[] a, int m, int l, CancellationToken cancellationToken)
    {
        if (m < l)
        {
            throw new ArgumentException($"A thin QR needs at least as many rows as columns; got {m}×{l}.", nameof(m));
        }

        double[] tau = new double[l];
        for (int k = 0; k < l; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Span<double> column = a.AsSpan(k * m + k, m - k);
            double alpha = column[0];
            double tailNorm = m - k > 1 ? TensorPrimitives.Norm<double>(column[1..]) : 0;
            if (tailNorm == 0)
            {
                // Already upper-triangular in this column: H = I (τ = 0), also when the whole column is zero.
                tau[k] = 0;
                continue;
            }

            double beta = -Math.CopySign(Hypot(alpha, tailNorm), alpha);
            tau[k] = (beta - alpha) / beta;
            TensorPrimitives.Multiply<double>(column[1..], 1 / (alpha - beta), column[1..]);
            column[0] = beta;
            ApplyReflector(a, m, k, tau[k], k + 1, l, a);
        }

        return tau;
    }

    /// <summary>Forms the l orthonormal columns of Q (m×l, column by column) from <see cref="Factor"/>'s output.</summary>
    public static void FormQ(double[] factored, int m, int l, ReadOnlySpan<double> tau, double[] q,
        CancellationToken cancellationToken)
    {
        Array.Clear(q, 0, m * l);
        for (int j = 0; j < l; j++)
        {
            q[j * m + j] = 1;
        }

        // Q·I = H₀·H₁·…·H_{l−1}·I, applied right to left: H_k touches rows ≥ k only, and columns j < k of the
        // partial product are still e_j there (zero in those rows), so each reflector updates columns k.. only.
        for (int k = l - 1; k >= 0; k--)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (tau[k] == 0)
            {
                continue;
            }

            ApplyReflector(q, m, k, tau[k], k, l, factored);
        }
    }

    /// <summary>R (l×l, row-major, zeros below the diagonal) from <see cref="Factor"/>'s output.</summary>
    public static double[] ExtractR(ReadOnlySpan<double> factored, int m, int l)
    {
        double[] r = new double[l * l];
        for (int j = 0; j < l; j++)
        {
            for (int i = 0; i <= j; i++)
            {
                r[i * l + j] = factored[j * m + i];
            }
        }

        return r;
    }

    // Applies H_k = I − τ·v·vᵀ to columns [first, last) of `target`, rows k..m−1; v = [1; the tail below the
    // diagonal of column k of `reflectors`].
    private static void ApplyReflector(double[] target, int m, int k, double tau, int first, int last, double[] reflectors)
    {
        int columns = last - first;
        if (columns <= 0)
        {
            return;
        }

        int tailStart = k * m + k + 1;
        int tailLength = m - k - 1;

        void Update(int j)
        {
            ReadOnlySpan<double> vector = reflectors.AsSpan(tailStart, tailLength);
            Span<double> column = target.AsSpan(j * m + k, m - k);
            double w = tau * (column[0] + TensorPrimitives.Dot(vector, column[1..]));
            column[0] -= w;
            TensorPrimitives.MultiplyAdd(vector, -w, column[1..], column[1..]);
        }

        if ((long)columns * (m - k) < ParallelThreshold)
        {
            for (int j = first; j < last; j++)
            {
                Update(j);
            }
        }
        else
        {
            Parallel.For(first, last, Update);
        }
    }

    private static double Hypot(double x, double y)
    {
        x = Math.Abs(x);
        y = Math.Abs(y);
        double larger = Math.Max(x, y);
        double smaller = Math.Min(x, y);
        if (larger == 0)
        {
            return 0;
        }

        double ratio = smaller / larger;
        return larger * Math.Sqrt(1 + ratio * ratio);
    }
}
