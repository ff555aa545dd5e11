// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Threading.Tasks;

namespace Compression.Quantization;

/// <summary>
/// The dense linear algebra GPTQ needs, kept small and in one place so the shared solvers of
/// <c>Compression.Numerics</c> can replace it: a Cholesky factorization, the upper Cholesky factor of an inverse, and a
/// register-blocked SIMD <c>C −= A·B</c>.
/// </summary>
/// <remarks>All matrices are dense and row-major with an explicit row stride.</remarks>
internal static class GptqLinearAlgebra
{
    /// <summary>Below this order the factorizations run on one thread: a parallel loop per column costs more than it saves.</summary>
    private const int ParallelOrder = 192;

    /// <summary>
    /// The upper triangular U with UᵀU = (H + λI)⁻¹ and a positive diagonal, in float64; false when H + λI is not
    /// numerically positive definite (a pivot is not positive or a value is not finite).
    /// </summary>
    /// <remarks>
    /// Computed without forming the inverse: with P the reversal permutation, factor P(H + λI)P = L̃L̃ᵀ; then
    /// U = P·L̃⁻¹·P is upper triangular with a positive diagonal and UᵀU = P·L̃⁻ᵀL̃⁻¹·P = (H + λI)⁻¹, so it is the
    /// Cholesky factor the reference obtains by Cholesky, inverse and a second Cholesky (one factorization and one
    /// triangular inverse instead of two factorizations, an inverse and a product, and better conditioned).
    /// </remarks>
    public static bool TryUpperFactorOfInverse(ReadOnlySpan<double> h, int n, double lambda, out double[] upper)
    {
        var flipped = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                flipped[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
            }

            flipped[i * n + i] += lambda;
        }

        upper = [];
        if (!TryCholesky(flipped, n))
        {
            return false;
        }

        double[] inverse = InvertLower(flipped, n);
        upper = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = i; j < n; j++)
            {
                double value = inverse[(n - 1 - i) * n + (n - 1 - j)];
                if (!double.IsFinite(value))
                {
                    return false;
                }

                upper[i * n + j] = value;
            }
        }

        return true;
    }

    /// <summary>In-place lower Cholesky factor of the symmetric matrix whose lower triangle <paramref name="a"/> holds;
    /// false at a non-positive or non-finite pivot. The strict upper triangle is left as zeros.</summary>
    public static bool TryCholesky(double[] a, int n)
    {
        for (int j = 0; j < n; j++)
        {
            // Left-looking: row j's prefix is final, so each entry of column j is one contiguous dot product.
            ReadOnlySpan<double> rowJ = a.AsSpan(j * n, j);
            double pivot = a[j * n + j] - TensorPrimitives.Dot(rowJ, rowJ);
            if (!(pivot > 0) || !double.IsFinite(pivot))
            {
                return false;
            }

            double diagonal = Math.Sqrt(pivot);
            a[j * n + j] = diagonal;
            int column = j;
            if (n - j > ParallelOrder)
            {
                Parallel.For(j + 1, n, i => a[i * n + column] = (a[i * n + column] - TensorPrimitives.Dot(a.AsSpan(i * n, column), a.AsSpan(column * n, column))) / diagonal);
            }
            else
            {
                for (int i = j + 1; i < n; i++)
                {
                    a[i * n + j] = (a[i * n + j] - TensorPrimitives.Dot(a.AsSpan(i * n, j), rowJ)) / diagonal;
                }
            }
        }

        for (int i = 0; i < n; i++)
        {
            a.AsSpan(i * n + i + 1, n - i - 1).Clear();
        }

        return true;
    }

    /// <summary>L⁻¹ of a lower triangular L with a positive diagonal, by forward substitution column by column.</summary>
    private static double[] InvertLower(double[] l, int n)
    {
        // Column j of L⁻¹ is kept as row j of a transposed buffer so the substitution's sums are contiguous dot products.
        var transposed = new double[n * n];
        void Column(int j)
        {
            Span<double> m = transposed.AsSpan(j * n, n);
            m[j] = 1.0 / l[j * n + j];
            for (int i = j + 1; i < n; i++)
            {
                m[i] = -TensorPrimitives.Dot(l.AsSpan(i * n + j, i - j), m.Slice(j, i - j)) / l[i * n + i];
            }
        }

        if (n > ParallelOrder)
        {
            Parallel.For(0, n, Column);
        }
        else
        {
            for (int j = 0; j < n; j++)
            {
                Column(j);
            }
        }

        var inverse = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            for (int i = j; i < n; i++)
            {
                inverse[i * n + j] = transposed[j * n + i];
            }
        }

        return inverse;
    }

    /// <summary>
    /// C[m×n] −= A[m×k]·B[k×n] on one thread (callers parallelize over row tiles). Tiles of 4 rows × two vectors of
    /// columns stay in registers across the whole k loop, so each loaded vector of B feeds four fused multiply-adds
    /// and a strip of B (k × two vectors) is reused from L1 by every 4-row tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplySubtract<T>(ReadOnlySpan<T> a, int aStride, ReadOnlySpan<T> b, int bStride, Span<T> c, int cStride, int m, int k, int n)
        where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0 || k == 0)
        {
            return;
        }

        int width = Vector256<T>.Count;
        int strip = 2 * width;
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref T ra = ref MemoryMarshal.GetReference(a);
            ref T rb = ref MemoryMarshal.GetReference(b);
            ref T rc = ref MemoryMarshal.GetReference(c);
            for (; j + strip <= n; j += strip)
            {
                int i = 0;
                for (; i + 4 <= m; i += 4)
                {
                    Tile4(ref Unsafe.Add(ref ra, i * aStride), aStride, ref Unsafe.Add(ref rb, j), bStride,
                        ref Unsafe.Add(ref rc, i * cStride + j), cStride, k);
                }

                for (; i < m; i++)
                {
                    Tile1(ref Unsafe.Add(ref ra, i * aStride), ref Unsafe.Add(ref rb, j), bStride, ref Unsafe.Add(ref rc, i * cStride + j), k);
                }
            }
        }

        // Remaining columns (fewer than one strip): a row of axpys per product row.
        if (j < n)
        {
            int rest = n - j;
            for (int i = 0; i < m; i++)
            {
                Span<T> target = c.Slice(i * cStride + j, rest);
                for (int p = 0; p < k; p++)
                {
                    T factor = -a[i * aStride + p];
                    if (factor != T.Zero)
                    {
                        TensorPrimitives.MultiplyAdd(b.Slice(p * bStride + j, rest), factor, target, target);
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma<T>(Vector256<T> x, Vector256<T> y, Vector256<T> addend)
        where T : unmanaged, INumber<T>
    {
        if (typeof(T) == typeof(float))
        {
            return Vector256.MultiplyAddEstimate(x.AsSingle(), y.AsSingle(), addend.AsSingle()).As<float, T>();
        }

        if (typeof(T) == typeof(double))
        {
            return Vector256.MultiplyAddEstimate(x.AsDouble(), y.AsDouble(), addend.AsDouble()).As<double, T>();
        }

        return x * y + addend;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4<T>(ref T a, int aStride, ref T b, int bStride, ref T c, int cStride, int k)
        where T : unmanaged, INumber<T>
    {
        int width = Vector256<T>.Count;
        Vector256<T> c00 = Vector256<T>.Zero, c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        ref T a1 = ref Unsafe.Add(ref a, aStride);
        ref T a2 = ref Unsafe.Add(ref a, 2 * aStride);
        ref T a3 = ref Unsafe.Add(ref a, 3 * aStride);
        for (int p = 0; p < k; p++)
        {
            ref T row = ref Unsafe.Add(ref b, p * bStride);
            Vector256<T> b0 = Vector256.LoadUnsafe(ref row);
            Vector256<T> b1 = Vector256.LoadUnsafe(ref row, (nuint)width);
            Vector256<T> x0 = Vector256.Create(Unsafe.Add(ref a, p));
            Vector256<T> x1 = Vector256.Create(Unsafe.Add(ref a1, p));
            Vector256<T> x2 = Vector256.Create(Unsafe.Add(ref a2, p));
            Vector256<T> x3 = Vector256.Create(Unsafe.Add(ref a3, p));
            c00 = Fma(x0, b0, c00);
            c01 = Fma(x0, b1, c01);
            c10 = Fma(x1, b0, c10);
            c11 = Fma(x1, b1, c11);
            c20 = Fma(x2, b0, c20);
            c21 = Fma(x2, b1, c21);
            c30 = Fma(x3, b0, c30);
            c31 = Fma(x3, b1, c31);
        }

        Store(ref c, width, c00, c01);
        Store(ref Unsafe.Add(ref c, cStride), width, c10, c11);
        Store(ref Unsafe.Add(ref c, 2 * cStride), width, c20, c21);
        Store(ref Unsafe.Add(ref c, 3 * cStride), width, c30, c31);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1<T>(ref T a, ref T b, int bStride, ref T c, int k)
        where T : unmanaged, INumber<T>
    {
        int width = Vector256<T>.Count;
        Vector256<T> c0 = Vector256<T>.Zero, c1 = c0;
        for (int p = 0; p < k; p++)
        {
            ref T row = ref Unsafe.Add(ref b, p * bStride);
            Vector256<T> x = Vector256.Create(Unsafe.Add(ref a, p));
            c0 = Fma(x, Vector256.LoadUnsafe(ref row), c0);
            c1 = Fma(x, Vector256.LoadUnsafe(ref row, (nuint)width), c1);
        }

        Store(ref c, width, c0, c1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<T>(ref T c, int width, Vector256<T> low, Vector256<T> high)
        where T : unmanaged, INumber<T>
    {
        (Vector256.LoadUnsafe(ref c) - low).StoreUnsafe(ref c);
        (Vector256.LoadUnsafe(ref c, (nuint)width) - high).StoreUnsafe(ref c, (nuint)width);
    }

    /// <summary>
    /// Σ over the rows d of <paramref name="d"/> (m × n) of dᵀ·H·d for a symmetric n × n <paramref name="h"/>, in float64
    /// (the quadratic forms GPTQ minimizes are small differences of large terms). Row tiles run in parallel.
    /// </summary>
    public static double SumOfQuadraticForms(double[] d, int m, int n, double[] h)
    {
        const int TileRows = 8;
        int tiles = (m + TileRows - 1) / TileRows;
        var partial = new double[tiles];
        Parallel.For(0, tiles, () => new double[TileRows * n], (t, _, product) =>
        {
            int first = t * TileRows, count = Math.Min(TileRows, m - first);
            Span<double> p = product.AsSpan(0, count * n);
            p.Clear();
            // p = −D_t·H (H symmetric, so the row-major H serves as B directly).
            MultiplySubtract<double>(d.AsSpan(first * n, count * n), n, h, n, p, n, count, n, n);
            double sum = 0;
            for (int r = 0; r < count; r++)
            {
                sum -= TensorPrimitives.Dot<double>(p.Slice(r * n, n), d.AsSpan((first + r) * n, n));
            }

            partial[t] = sum;
            return product;
        }, _ => { });

        double total = 0;
        foreach (double value in partial)
        {
            total += value;   // a fixed order, so the result does not depend on scheduling
        }

        return total;
    }
}
