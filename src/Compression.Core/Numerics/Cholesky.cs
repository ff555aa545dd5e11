// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;
using System.Threading.Tasks;

namespace Compression.Numerics;

/// <summary>
/// Cholesky factorisation <c>A = L·Lᵀ</c> of symmetric positive-definite float64 matrices, the inverse from it,
/// the upper factor of the inverse that GPTQ and SparseGPT use, and triangular solves with several right-hand sides.
/// All matrices are n × n, row-major and dense (leading dimension n); right-hand sides are n × columns.
/// </summary>
/// <remarks>
/// <para>The factorisation is the blocked right-looking algorithm of LAPACK's <c>dpotrf</c> (Golub and Van Loan,
/// "Matrix Computations", 4th ed., §4.2): for each block of 128 columns, factor the diagonal block unblocked, solve
/// the panel below it (rows in parallel), then update the trailing matrix with the symmetric rank-128 update
/// <see cref="Gemm.SymmetricRankKUpdate(MatrixTranspose, int, int, double, ReadOnlySpan{double}, int, double, Span{double}, int)"/>,
/// which does almost all of the n³/3 flops.</para>
/// <para>Accuracy is that of any Cholesky (backward stable): the computed L satisfies <c>L·Lᵀ = A + E</c> with
/// <c>‖E‖ ≤ c·n·ε·‖A‖</c>, ε = 2⁻⁵³; inverses lose a further factor of the condition number κ(A).</para>
/// </remarks>
/// <example>
/// <code>
/// // GPTQ: H ← H + λ·mean(diag H)·I, then the upper Cholesky factor of H⁻¹ (torch.linalg.cholesky(Hinv, upper=True)).
/// double[] hinvUpper = new double[c * c];
/// if (!Cholesky.TryUpperFactorOfInverse(hessian, c, hinvUpper))
/// {
///     // H is not positive definite: raise the damping and retry.
/// }
/// </code>
/// </example>
public static unsafe class Cholesky
{
    // Panel width: wide enough that the rank-nb update runs near GEMM speed, narrow enough that the unblocked
    // panel work (n²·nb/2 flops of row-wise dot products) stays a few percent of n³/3.
    private const int BlockSize = 128;

    // Inverting blocks up to this order row by row beats recursing into GEMMs too small to pay for their packing.
    private const int InverseLeafSize = 128;

    // Row block of the Xᵀ·X product in Invert: large enough to keep the rank-k update efficient.
    private const int GramBlock = 256;

    /// <summary>
    /// Factors the symmetric positive-definite matrix in <paramref name="a"/> in place: on success its lower
    /// triangle (diagonal included) holds L with <c>A = L·Lᵀ</c>.
    /// </summary>
    /// <param name="a">The n × n matrix, row-major. Only the lower triangle is read; the strict upper triangle is
    /// neither read nor written.</param>
    /// <param name="n">The order of the matrix.</param>
    /// <returns><see langword="true"/> on success; <see langword="false"/> when a pivot is not positive (A is not
    /// positive definite to working precision, or holds a NaN). The lower triangle is then partly overwritten and
    /// must be discarded: columns before the failing one hold the corresponding columns of L, the rest are
    /// intermediate values. The strict upper triangle is untouched either way.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative.</exception>
    /// <exception cref="ArgumentException"><paramref name="a"/> holds fewer than n² elements.</exception>
    public static bool TryFactor(Span<double> a, int n) => TryFactor(a, n, CancellationToken.None);

    /// <summary><see cref="TryFactor(Span{double}, int)"/>, checking <paramref name="cancellationToken"/> once per
    /// block of 128 columns (one rank-128 update of the trailing matrix, at most 2·n²·128 flops).</summary>
    /// <param name="a">The n × n matrix, row-major; only its lower triangle is read.</param>
    /// <param name="n">The order of the matrix.</param>
    /// <param name="cancellationToken">Checked between column blocks.</param>
    /// <returns>As <see cref="TryFactor(Span{double}, int)"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative.</exception>
    /// <exception cref="ArgumentException"><paramref name="a"/> holds fewer than n² elements.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; the lower triangle of
    /// <paramref name="a"/> is then partly overwritten and must be discarded.</exception>
    public static bool TryFactor(Span<double> a, int n, CancellationToken cancellationToken)
    {
        RequireSquare(a.Length, n, nameof(a));
        fixed (double* pa = a)
        {
            return Factor(pa, n, cancellationToken) < 0;
        }
    }

    /// <summary>
    /// Computes <c>A⁻¹ = L⁻ᵀ·L⁻¹</c> from the Cholesky factor L of A (as left by <see cref="TryFactor(Span{double}, int)"/>).
    /// </summary>
    /// <param name="factor">L in its lower triangle (the strict upper triangle is ignored).</param>
    /// <param name="n">The order.</param>
    /// <param name="inverse">Receives the full symmetric inverse (both triangles).</param>
    /// <remarks>Inverts L blockwise (recursive halving, off-diagonal blocks by two products), then forms L⁻ᵀL⁻¹
    /// block row by block row so that the zeros of L⁻¹ are never multiplied: about n³ flops in all, plus n²
    /// doubles of scratch.</remarks>
    /// <exception cref="ArgumentException">A span holds fewer than n² elements, or they overlap.</exception>
    public static void Invert(ReadOnlySpan<double> factor, int n, Span<double> inverse)
    {
        RequireSquare(factor.Length, n, nameof(factor));
        RequireSquare(inverse.Length, n, nameof(inverse));
        RequireDisjoint(factor, inverse, nameof(inverse));
        if (n == 0)
        {
            return;
        }

        double[] x = GC.AllocateUninitializedArray<double>(n * n);
        CopyLower(factor, x, n);
        fixed (double* px = x, pinv = inverse)
        {
            InvertLower(px, n, n, CancellationToken.None);

            // (Xᵀ X)[i, j] = Σ_p X[p, i]·X[p, j] over p ≥ max(i, j): a block of rows [p0, p1) of X only reaches
            // the leading p1 × p1 corner, so the sum costs n³/3 flops instead of the n³ of a full product.
            inverse[..(n * n)].Clear();
            for (int p0 = 0; p0 < n; p0 += GramBlock)
            {
                int p1 = Math.Min(n, p0 + GramBlock);
                GemmDriver<double>.Run(true, false, p1, p1, p1 - p0, 1.0, px + p0 * n, n, px + p0 * n, n, 1.0, pinv, n, lowerOnly: true);
            }
        }

        MirrorLowerToUpper(inverse, n);
    }

    /// <summary>
    /// Computes the upper-triangular U with <c>A⁻¹ = Uᵀ·U</c> for a symmetric positive-definite A, i.e.
    /// <c>torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(A)), upper=True)</c> as GPTQ
    /// (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers", 2023)
    /// and SparseGPT use it, without ever forming A⁻¹.
    /// </summary>
    /// <param name="a">A, row-major; only its lower triangle is read.</param>
    /// <param name="n">The order.</param>
    /// <param name="upper">Receives U (upper triangle, positive diagonal) with zeros below the diagonal.</param>
    /// <returns><see langword="false"/> when A is not positive definite to working precision (then
    /// <paramref name="upper"/> holds intermediate values).</returns>
    /// <remarks>
    /// With P the order-reversing permutation, factor <c>P·A·P = M·Mᵀ</c>; then <c>A = (PMP)(PMP)ᵀ</c> with PMP
    /// upper triangular, so <c>A⁻¹ = (PMP)⁻ᵀ(PMP)⁻¹</c> and, by uniqueness of the factor with a positive diagonal,
    /// <c>U = (PMP)⁻¹ = P·M⁻¹·P</c>. For row-major storage, P·X·P is the reversal of the flat array. Cost: a
    /// factorisation (n³/3 flops) and a triangular inverse (n³/3 useful, about 2n³/3 executed since its GEMMs
    /// treat the triangles as full), and scratch of at most n²/4 doubles beyond
    /// <paramref name="upper"/>; more accurate than the three-step route since A⁻¹ is never rounded.
    /// </remarks>
    /// <exception cref="ArgumentException">A span holds fewer than n² elements, or they overlap.</exception>
    public static bool TryUpperFactorOfInverse(ReadOnlySpan<double> a, int n, Span<double> upper) =>
        TryUpperFactorOfInverse(a, n, upper, CancellationToken.None);

    /// <summary><see cref="TryUpperFactorOfInverse(ReadOnlySpan{double}, int, Span{double})"/>, checking
    /// <paramref name="cancellationToken"/> once per block of 128 columns of the factorisation and once per block of
    /// the recursive triangular inverse (each at most a few n²·128-flop products).</summary>
    /// <param name="a">A, row-major; only its lower triangle is read.</param>
    /// <param name="n">The order.</param>
    /// <param name="upper">Receives U (upper triangle, positive diagonal) with zeros below the diagonal.</param>
    /// <param name="cancellationToken">Checked between blocks.</param>
    /// <returns>As <see cref="TryUpperFactorOfInverse(ReadOnlySpan{double}, int, Span{double})"/>.</returns>
    /// <exception cref="ArgumentException">A span holds fewer than n² elements, or they overlap.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; <paramref name="a"/> is unchanged and
    /// <paramref name="upper"/> holds intermediate values.</exception>
    public static bool TryUpperFactorOfInverse(ReadOnlySpan<double> a, int n, Span<double> upper, CancellationToken cancellationToken)
    {
        RequireSquare(a.Length, n, nameof(a));
        RequireSquare(upper.Length, n, nameof(upper));
        RequireDisjoint(a, upper, nameof(upper));
        Span<double> u = upper[..(n * n)];

        // Reversed lower triangle of A = upper of P·A·P; read it through symmetry from A's lower triangle.
        CopyLower(a, u, n);
        MirrorLowerToUpper(u, n);
        u.Reverse();
        fixed (double* pu = u)
        {
            if (Factor(pu, n, cancellationToken) >= 0)
            {
                return false;
            }

            ZeroStrictUpper(u, n);
            InvertLower(pu, n, n, cancellationToken);
        }

        u.Reverse();
        return true;
    }

    /// <summary>Solves <c>L·X = B</c> in place for a lower-triangular L (its strict upper triangle is ignored).</summary>
    /// <param name="lower">L, n × n row-major.</param>
    /// <param name="n">The order of L and rows of B.</param>
    /// <param name="b">B (n × <paramref name="columns"/>, row-major), overwritten by X.</param>
    /// <param name="columns">The number of right-hand sides.</param>
    /// <remarks>Blocked: each block of 128 rows first receives the products with all solved rows (one GEMM), then
    /// is substituted. A zero diagonal element gives infinities, as in BLAS <c>trsm</c>.</remarks>
    /// <exception cref="ArgumentOutOfRangeException">A size is negative.</exception>
    /// <exception cref="ArgumentException">A span is too short, or they overlap.</exception>
    public static void SolveLower(ReadOnlySpan<double> lower, int n, Span<double> b, int columns) =>
        SolveLower(lower, n, b, columns, nameof(lower));

    /// <summary>Solves <c>U·X = B</c> in place for an upper-triangular U (its strict lower triangle is ignored).</summary>
    /// <inheritdoc cref="SolveLower(ReadOnlySpan{double}, int, Span{double}, int)"/>
    public static void SolveUpper(ReadOnlySpan<double> upper, int n, Span<double> b, int columns)
    {
        RequireSquare(upper.Length, n, nameof(upper));
        ValidateRhs(b, n, columns);
        RequireDisjoint(upper, b, nameof(b));
        fixed (double* pt = upper, pb = b)
        {
            SolveTriangular(pt, n, n, transpose: false, forward: false, pb, columns, columns);
        }
    }

    /// <summary>Solves <c>A·X = B</c> in place given the Cholesky factor L of A: <c>L·Y = B</c>, then <c>Lᵀ·X = Y</c>.</summary>
    /// <inheritdoc cref="SolveLower(ReadOnlySpan{double}, int, Span{double}, int)"/>
    public static void Solve(ReadOnlySpan<double> factor, int n, Span<double> b, int columns)
    {
        SolveLower(factor, n, b, columns, nameof(factor));
        fixed (double* pt = factor, pb = b)
        {
            SolveTriangular(pt, n, n, transpose: true, forward: false, pb, columns, columns);
        }
    }

    private static void SolveLower(ReadOnlySpan<double> lower, int n, Span<double> b, int columns, string name)
    {
        RequireSquare(lower.Length, n, name);
        ValidateRhs(b, n, columns);
        RequireDisjoint(lower, b, nameof(b));
        fixed (double* pt = lower, pb = b)
        {
            SolveTriangular(pt, n, n, transpose: false, forward: true, pb, columns, columns);
        }
    }

    /// <summary>Blocked right-looking factorisation; returns the failing column or −1.</summary>
    private static int Factor(double* a, int n, CancellationToken cancellationToken)
    {
        nint lda = n;
        for (int k0 = 0; k0 < n; k0 += BlockSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int kb = Math.Min(BlockSize, n - k0);
            double* diagonal = a + k0 * lda + k0;
            int failed = CholeskyKernels.FactorBlock(diagonal, kb, lda);
            if (failed >= 0)
            {
                return k0 + failed;
            }

            int rows = n - k0 - kb;
            if (rows == 0)
            {
                break;
            }

            double* panel = diagonal + kb * lda;
            SolvePanel(diagonal, kb, lda, panel, rows);
            GemmDriver<double>.Run(false, true, rows, rows, kb, -1.0, panel, lda, panel, lda, 1.0, panel + kb, lda, lowerOnly: true);
        }

        return -1;
    }

    private static void SolvePanel(double* l, int kb, nint lda, double* panel, int rows)
    {
        const int RowsPerTask = 32;
        int tasks = (rows + RowsPerTask - 1) / RowsPerTask;
        if (tasks == 1 || Environment.ProcessorCount == 1)
        {
            CholeskyKernels.SolvePanelRows(l, kb, lda, panel, 0, rows);
            return;
        }

        nint lAddress = (nint)l, panelAddress = (nint)panel;
        Parallel.For(0, tasks, t => CholeskyKernels.SolvePanelRows(
            (double*)lAddress, kb, lda, (double*)panelAddress, t * RowsPerTask, Math.Min(rows, (t + 1) * RowsPerTask)));
    }

    /// <summary>
    /// In-place inverse of a lower-triangular matrix whose strict upper triangle is zero. Recursive halving:
    /// with L = [L₁₁ 0; L₂₁ L₂₂], L⁻¹ = [L₁₁⁻¹ 0; −L₂₂⁻¹·L₂₁·L₁₁⁻¹ L₂₂⁻¹]; the two products run as GEMMs, treating
    /// the triangles as full (the zeros make that correct), about 2n³/3 flops in all.
    /// </summary>
    private static void InvertLower(double* l, int n, nint ld, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (n <= InverseLeafSize)
        {
            Span<double> row = stackalloc double[n];
            CholeskyKernels.InvertLowerBlock(l, n, ld, row);
            return;
        }

        int n1 = (n / 2 + InverseLeafSize - 1) / InverseLeafSize * InverseLeafSize;
        int n2 = n - n1;
        double* l11 = l, l21 = l + n1 * ld, l22 = l21 + n1;
        InvertLower(l11, n1, ld, cancellationToken);
        InvertLower(l22, n2, ld, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        double[] product = GC.AllocateUninitializedArray<double>(n2 * n1);
        fixed (double* t = product)
        {
            GemmDriver<double>.Run(false, false, n2, n1, n1, 1.0, l21, ld, l11, ld, 0.0, t, n1, lowerOnly: false);
            GemmDriver<double>.Run(false, false, n2, n1, n2, -1.0, l22, ld, t, n1, 0.0, l21, ld, lowerOnly: false);
        }
    }

    /// <summary>Blocked substitution with op(T) = T or Tᵀ for T stored row-major with leading dimension ldt.</summary>
    private static void SolveTriangular(double* t, int n, nint ldt, bool transpose, bool forward, double* b, int nrhs, nint ldb)
    {
        if (n == 0 || nrhs == 0)
        {
            return;
        }

        for (int blockIndex = 0; blockIndex * BlockSize < n; blockIndex++)
        {
            int k0, k1;
            if (forward)
            {
                k0 = blockIndex * BlockSize;
                k1 = Math.Min(n, k0 + BlockSize);
                if (k0 > 0)
                {
                    // B[k0:k1] −= op(T)[k0:k1, 0:k0]·X[0:k0]
                    double* tBlock = transpose ? t + k0 : t + k0 * ldt;
                    GemmDriver<double>.Run(transpose, false, k1 - k0, nrhs, k0, -1.0, tBlock, ldt, b, ldb, 1.0, b + k0 * ldb, ldb, lowerOnly: false);
                }
            }
            else
            {
                k1 = n - blockIndex * BlockSize;
                k0 = Math.Max(0, k1 - BlockSize);
                if (k1 < n)
                {
                    // B[k0:k1] −= op(T)[k0:k1, k1:n]·X[k1:n]
                    double* tBlock = transpose ? t + k1 * ldt + k0 : t + k0 * ldt + k1;
                    GemmDriver<double>.Run(transpose, false, k1 - k0, nrhs, n - k1, -1.0, tBlock, ldt, b + k1 * ldb, ldb, 1.0, b + k0 * ldb, ldb, lowerOnly: false);
                }
            }

            CholeskyKernels.SubstituteBlock(t, ldt, transpose, forward, k0, k1, b, nrhs, ldb);
        }
    }

    // The copies below are passes over n² doubles (128 MB at n = 4096): rows go in parallel above a small size, each
    // row (or tile column) written by one task only.
    private const int ParallelCopyOrder = 512;

    private static void CopyLower(ReadOnlySpan<double> source, Span<double> destination, int n)
    {
        fixed (double* ps = source, pd = destination)
        {
            nint s = (nint)ps, d = (nint)pd;
            ForRows(n, i =>
            {
                var row = new Span<double>((double*)d + (long)i * n, n);
                new ReadOnlySpan<double>((double*)s + (long)i * n, i + 1).CopyTo(row);
                row[(i + 1)..].Clear();
            });
        }
    }

    private static void ZeroStrictUpper(Span<double> matrix, int n)
    {
        fixed (double* pm = matrix)
        {
            nint m = (nint)pm;
            ForRows(n, i => new Span<double>((double*)m + (long)i * n + i + 1, n - i - 1).Clear());
        }
    }

    private static void MirrorLowerToUpper(Span<double> matrix, int n)
    {
        // Blocked so that the column walk of the lower triangle stays in cache; a task per tile row i0 writes only
        // columns [i0, i0 + Tile) of the upper triangle.
        const int Tile = 64;
        fixed (double* pm = matrix)
        {
            nint m = (nint)pm;
            int tiles = (n + Tile - 1) / Tile;
            void MirrorTileRow(int t)
            {
                double* a = (double*)m;
                int i0 = t * Tile;
                for (int j0 = 0; j0 <= i0; j0 += Tile)
                {
                    for (int i = i0; i < Math.Min(n, i0 + Tile); i++)
                    {
                        for (int j = j0; j < Math.Min(i, j0 + Tile); j++)
                        {
                            a[(long)j * n + i] = a[(long)i * n + j];
                        }
                    }
                }
            }

            if (n < ParallelCopyOrder)
            {
                for (int t = 0; t < tiles; t++)
                {
                    MirrorTileRow(t);
                }
            }
            else
            {
                Parallel.For(0, tiles, MirrorTileRow);
            }
        }
    }

    private static void ForRows(int n, Action<int> row)
    {
        if (n < ParallelCopyOrder)
        {
            for (int i = 0; i < n; i++)
            {
                row(i);
            }
        }
        else
        {
            Parallel.For(0, n, row);
        }
    }

    private static void RequireSquare(int length, int n, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (length < (long)n * n)
        {
            ThrowHelper.ThrowArgument(name, $"{name} holds {length} elements; an {n}×{n} matrix needs {(long)n * n}.");
        }
    }

    private static void ValidateRhs(Span<double> b, int n, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        if (b.Length < (long)n * columns)
        {
            ThrowHelper.ThrowArgument(nameof(b), $"b holds {b.Length} elements; {n} rows of {columns} right-hand sides need {(long)n * columns}.");
        }
    }

    private static void RequireDisjoint(ReadOnlySpan<double> input, ReadOnlySpan<double> output, string name)
    {
        if (input.Overlaps(output))
        {
            ThrowHelper.ThrowArgument(name, $"{name} overlaps the input matrix; pass a separate buffer.");
        }
    }
}
