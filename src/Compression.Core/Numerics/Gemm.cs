// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics;

namespace Compression.Numerics;

/// <summary>
/// Dense matrix products on row-major spans: the general product <c>C = α·op(A)·op(B) + β·C</c> (BLAS GEMM) and
/// the symmetric rank-k update <c>C = α·op(A)·op(A)ᵀ + β·C</c> on the lower triangle (BLAS SYRK), in float32 and
/// float64.
/// </summary>
/// <remarks>
/// <para>Matrices are row-major with a leading dimension (the distance between consecutive rows, ≥ the stored
/// column count), so a sub-matrix of a larger one is addressed without copying: the block at row r, column c of an
/// <c>R × Cols</c> matrix is <c>span[(r·Cols + c)..]</c> with leading dimension <c>Cols</c>.</para>
/// <para>The implementation follows Goto and van de Geijn, "Anatomy of High-Performance Matrix Multiplication"
/// (ACM TOMS, 2008): operand panels are packed into contiguous buffers sized for the L1 and L2 caches and a
/// register-blocked FMA micro-kernel (12 × 32 floats or 12 × 16 doubles with AVX-512, 6 × 16 / 6 × 8 with AVX2,
/// scalar otherwise) computes each tile; tiles of C are spread over the cores with <c>Parallel.For</c>.</para>
/// <para>Each element of C is a sum accumulated in the element type with fused multiply-adds, in an order that
/// depends on the blocking: results agree with a float64 reference to about <c>k·ε·Σ|aᵢ||bᵢ|</c> (ε the unit
/// roundoff of the element type), not bit for bit with other BLAS libraries. As in BLAS, β = 0 makes C write-only
/// (NaNs in it do not propagate). C must not overlap A or B.</para>
/// </remarks>
/// <example>
/// <code>
/// // GPTQ's lazy batch update W[:, rest] −= E · Hinv[block, rest] on views of the full matrices:
/// Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, rows, rest, block,
///     -1f, errors, block, hinv.AsSpan(start * columns + end), columns, 1f, weights.AsSpan(end), columns);
/// </code>
/// </example>
public static unsafe class Gemm
{
    /// <summary>C = α·op(A)·op(B) + β·C in float32, with op(A) m × k, op(B) k × n and C m × n.</summary>
    /// <param name="transposeA">Whether A is stored k × m and read transposed.</param>
    /// <param name="transposeB">Whether B is stored n × k and read transposed.</param>
    /// <param name="m">Rows of op(A) and C.</param>
    /// <param name="n">Columns of op(B) and C.</param>
    /// <param name="k">Columns of op(A), rows of op(B).</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A, row-major.</param>
    /// <param name="lda">Leading dimension of A: at least its stored column count (k, or m when transposed).</param>
    /// <param name="b">B, row-major.</param>
    /// <param name="ldb">Leading dimension of B: at least n, or k when transposed.</param>
    /// <param name="beta">Scale of the existing C; 0 ignores its contents.</param>
    /// <param name="c">C, row-major, updated in place.</param>
    /// <param name="ldc">Leading dimension of C: at least n.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is negative, a leading dimension is too small, or a
    /// transpose value is undefined.</exception>
    /// <exception cref="ArgumentException">A span is too short for its shape and leading dimension, or C overlaps A or B.</exception>
    public static void Multiply(
        MatrixTranspose transposeA, MatrixTranspose transposeB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        Validate(transposeA, transposeB, m, n, k, a, lda, b, ldb, c, ldc);
        fixed (float* pa = a, pb = b, pc = c)
        {
            GemmDriver<float>.Run(
                transposeA == MatrixTranspose.Transpose, transposeB == MatrixTranspose.Transpose, m, n, k,
                alpha, pa, lda, pb, ldb, beta, pc, ldc, lowerOnly: false);
        }
    }

    /// <summary>C = α·op(A)·op(B) + β·C in float64; see the float32 overload for the parameters.</summary>
    /// <inheritdoc cref="Multiply(MatrixTranspose, MatrixTranspose, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>
    public static void Multiply(
        MatrixTranspose transposeA, MatrixTranspose transposeB, int m, int n, int k,
        double alpha, ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb,
        double beta, Span<double> c, int ldc)
    {
        Validate(transposeA, transposeB, m, n, k, a, lda, b, ldb, c, ldc);
        fixed (double* pa = a, pb = b, pc = c)
        {
            GemmDriver<double>.Run(
                transposeA == MatrixTranspose.Transpose, transposeB == MatrixTranspose.Transpose, m, n, k,
                alpha, pa, lda, pb, ldb, beta, pc, ldc, lowerOnly: false);
        }
    }

    /// <summary>C = A·B for dense row-major A (m × k), B (k × n) and C (m × n), overwriting C.</summary>
    /// <exception cref="ArgumentException">A span's length differs from its shape.</exception>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k)
    {
        RequireExactLength(a.Length, (long)m * k, nameof(a));
        RequireExactLength(b.Length, (long)k * n, nameof(b));
        RequireExactLength(c.Length, (long)m * n, nameof(c));
        Multiply(MatrixTranspose.None, MatrixTranspose.None, m, n, k, 1f, a, Math.Max(k, 1), b, Math.Max(n, 1), 0f, c, Math.Max(n, 1));
    }

    /// <summary>C = A·B for dense row-major A (m × k), B (k × n) and C (m × n), overwriting C.</summary>
    /// <exception cref="ArgumentException">A span's length differs from its shape.</exception>
    public static void Multiply(ReadOnlySpan<double> a, ReadOnlySpan<double> b, Span<double> c, int m, int n, int k)
    {
        RequireExactLength(a.Length, (long)m * k, nameof(a));
        RequireExactLength(b.Length, (long)k * n, nameof(b));
        RequireExactLength(c.Length, (long)m * n, nameof(c));
        Multiply(MatrixTranspose.None, MatrixTranspose.None, m, n, k, 1.0, a, Math.Max(k, 1), b, Math.Max(n, 1), 0.0, c, Math.Max(n, 1));
    }

    /// <summary>
    /// The symmetric rank-k update on the lower triangle, C = α·op(A)·op(A)ᵀ + β·C in float64, with op(A) n × k:
    /// only elements with column ≤ row are read or written, the strict upper triangle of C is left untouched.
    /// </summary>
    /// <param name="transpose">Whether A is stored k × n (then op(A)·op(A)ᵀ = AᵀA, a Gram matrix of columns).</param>
    /// <param name="n">Order of C.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="alpha">Scale of the product (−1 for the trailing update of a Cholesky factorisation).</param>
    /// <param name="a">A, row-major.</param>
    /// <param name="lda">Leading dimension of A: at least k, or n when transposed.</param>
    /// <param name="beta">Scale of the existing lower triangle; 0 ignores its contents.</param>
    /// <param name="c">C, row-major, its lower triangle updated in place.</param>
    /// <param name="ldc">Leading dimension of C: at least n.</param>
    /// <remarks>Costs about half a <see cref="Multiply(MatrixTranspose, MatrixTranspose, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/>
    /// of the same shape: tiles wholly above the diagonal are skipped.</remarks>
    /// <exception cref="ArgumentOutOfRangeException">A size is negative or a leading dimension too small.</exception>
    /// <exception cref="ArgumentException">A span is too short, or C overlaps A.</exception>
    public static void SymmetricRankKUpdate(
        MatrixTranspose transpose, int n, int k, double alpha, ReadOnlySpan<double> a, int lda,
        double beta, Span<double> c, int ldc)
    {
        MatrixTranspose other = transpose == MatrixTranspose.None ? MatrixTranspose.Transpose : MatrixTranspose.None;
        Validate(transpose, other, n, n, k, a, lda, a, lda, c, ldc);
        fixed (double* pa = a, pc = c)
        {
            GemmDriver<double>.Run(
                transpose == MatrixTranspose.Transpose, other == MatrixTranspose.Transpose, n, n, k,
                alpha, pa, lda, pa, lda, beta, pc, ldc, lowerOnly: true);
        }
    }

    /// <summary>The float32 symmetric rank-k update on the lower triangle; see the float64 overload.</summary>
    /// <inheritdoc cref="SymmetricRankKUpdate(MatrixTranspose, int, int, double, ReadOnlySpan{double}, int, double, Span{double}, int)"/>
    public static void SymmetricRankKUpdate(
        MatrixTranspose transpose, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        float beta, Span<float> c, int ldc)
    {
        MatrixTranspose other = transpose == MatrixTranspose.None ? MatrixTranspose.Transpose : MatrixTranspose.None;
        Validate(transpose, other, n, n, k, a, lda, a, lda, c, ldc);
        fixed (float* pa = a, pc = c)
        {
            GemmDriver<float>.Run(
                transpose == MatrixTranspose.Transpose, other == MatrixTranspose.Transpose, n, n, k,
                alpha, pa, lda, pa, lda, beta, pc, ldc, lowerOnly: true);
        }
    }

    private static void Validate<T>(
        MatrixTranspose transposeA, MatrixTranspose transposeB, int m, int n, int k,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ValidateTranspose(transposeA, nameof(transposeA));
        ValidateTranspose(transposeB, nameof(transposeB));
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        bool ta = transposeA == MatrixTranspose.Transpose, tb = transposeB == MatrixTranspose.Transpose;
        ValidateOperand(a.Length, nameof(a), ta ? k : m, ta ? m : k, lda, nameof(lda));
        ValidateOperand(b.Length, nameof(b), tb ? n : k, tb ? k : n, ldb, nameof(ldb));
        ValidateOperand(c.Length, nameof(c), m, n, ldc, nameof(ldc));
        ReadOnlySpan<T> output = c;
        if (m > 0 && n > 0 && k > 0 && (output.Overlaps(a) || output.Overlaps(b)))
        {
            ThrowHelper.ThrowArgument(nameof(c), "C overlaps A or B; the product needs a separate output.");
        }
    }

    private static void ValidateTranspose(MatrixTranspose value, string name)
    {
        if (value is not (MatrixTranspose.None or MatrixTranspose.Transpose))
        {
            ThrowHelper.ThrowArgumentOutOfRange(name, value, "Expected MatrixTranspose.None or MatrixTranspose.Transpose.");
        }
    }

    private static void ValidateOperand(int length, string name, int rows, int columns, int ld, string ldName)
    {
        if (ld < Math.Max(1, columns))
        {
            ThrowHelper.ThrowArgumentOutOfRange(
                ldName, ld, $"The leading dimension of {name} must be at least its stored column count {columns} (and 1).");
        }

        long needed = rows == 0 || columns == 0 ? 0 : (long)(rows - 1) * ld + columns;
        if (length < needed)
        {
            ThrowHelper.ThrowArgument(
                name, $"{name} holds {length} elements; a stored {rows}×{columns} matrix with leading dimension {ld} needs {needed}.");
        }
    }

    private static void RequireExactLength(int length, long expected, string name)
    {
        if (length != expected)
        {
            ThrowHelper.ThrowArgument(name, $"{name} holds {length} elements; its shape needs exactly {expected}.");
        }
    }
}
