// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;

namespace Compression.Numerics;

/// <summary>
/// The unblocked pieces of <see cref="Cholesky"/>: small diagonal-block factorisation and inversion, the row-wise
/// triangular solve of a panel, and substitution within a block of right-hand sides. Row-major, leading dimensions
/// in elements, arguments trusted. The O(n³) work of large problems goes through <see cref="GemmDriver{T}"/>.
/// </summary>
internal static unsafe class CholeskyKernels
{
    /// <summary>
    /// Cholesky–Banachiewicz on the lower triangle of an n × n block: row i of L needs only rows j &lt; i, so every
    /// inner product runs over two contiguous row prefixes. Returns the first column whose pivot is not positive
    /// (or NaN), or −1.
    /// </summary>
    public static int FactorBlock(double* a, int n, nint lda)
    {
        for (int i = 0; i < n; i++)
        {
            var rowI = new Span<double>(a + i * lda, i + 1);
            for (int j = 0; j < i; j++)
            {
                var rowJ = new ReadOnlySpan<double>(a + j * lda, j);
                rowI[j] = (rowI[j] - TensorPrimitives.Dot(rowI[..j], rowJ)) / a[j * lda + j];
            }

            double pivot = rowI[i] - TensorPrimitives.Dot<double>(rowI[..i], rowI[..i]);
            if (!(pivot > 0))
            {
                return i;
            }

            rowI[i] = Math.Sqrt(pivot);
        }

        return -1;
    }

    /// <summary>
    /// Rows [start, end) of the panel X (leading dimension <paramref name="lda"/>) become X·L⁻ᵀ for the n × n lower
    /// factor L: each row is an independent forward substitution against rows of L, so rows parallelise freely.
    /// </summary>
    public static void SolvePanelRows(double* l, int n, nint lda, double* x, int start, int end)
    {
        for (int r = start; r < end; r++)
        {
            var row = new Span<double>(x + r * lda, n);
            for (int j = 0; j < n; j++)
            {
                var lj = new ReadOnlySpan<double>(l + j * lda, j);
                row[j] = (row[j] - TensorPrimitives.Dot(row[..j], lj)) / l[j * lda + j];
            }
        }
    }

    /// <summary>
    /// In-place inverse of an n × n lower-triangular block whose strict upper triangle is zero: row i of L⁻¹ is
    /// −(Σ_{p&lt;i} L[i,p]·X[p,:]) / L[i,i], accumulated as row axpys in <paramref name="row"/> (n scratch values).
    /// </summary>
    public static void InvertLowerBlock(double* l, int n, nint ld, Span<double> row)
    {
        for (int i = 0; i < n; i++)
        {
            Span<double> sum = row[..i];
            sum.Clear();
            double* li = l + i * ld;
            for (int p = 0; p < i; p++)
            {
                // Row p of X is zero past column p, so only its first p + 1 entries contribute.
                var xp = new ReadOnlySpan<double>(l + p * ld, p + 1);
                TensorPrimitives.FusedMultiplyAdd(xp, li[p], sum[..(p + 1)], sum[..(p + 1)]);
            }

            double inverseDiagonal = 1.0 / li[i];
            TensorPrimitives.Multiply(sum, -inverseDiagonal, new Span<double>(li, i));
            li[i] = inverseDiagonal;
        }
    }

    /// <summary>
    /// Substitution within one diagonal block of op(T) for the rows [k0, k1) of B (nrhs columns): forward when op(T)
    /// is lower, backward when upper. Contributions from outside the block were already subtracted.
    /// </summary>
    public static void SubstituteBlock(
        double* t, nint ldt, bool transpose, bool forward, int k0, int k1, double* b, int nrhs, nint ldb)
    {
        for (int step = 0; step < k1 - k0; step++)
        {
            int i = forward ? k0 + step : k1 - 1 - step;
            var bi = new Span<double>(b + i * ldb, nrhs);
            int from = forward ? k0 : i + 1, to = forward ? i : k1;
            for (int j = from; j < to; j++)
            {
                double tij = transpose ? t[j * ldt + i] : t[i * ldt + j];
                TensorPrimitives.FusedMultiplyAdd(new ReadOnlySpan<double>(b + j * ldb, nrhs), -tij, bi, bi);
            }

            TensorPrimitives.Divide(bi, t[i * ldt + i], bi);
        }
    }
}
