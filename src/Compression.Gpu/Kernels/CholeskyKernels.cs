// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using ILGPU;

namespace Compression.Gpu.Kernels;

/// <summary>
/// Device code of the float64 blocked Cholesky factorization and triangular inverse behind
/// <see cref="Numerics.GpuCholesky"/>. Matrices are n × n, row-major, in one buffer; only lower triangles are read.
/// </summary>
internal static class CholeskyKernels
{
    /// <summary>Panel width of the factorization and leaf size of the inverse.</summary>
    public const int Block = 32;

    public const int Tile = 64;
    public const int Step = 16;
    public const int Threads = 16;

    /// <summary>m = P·(A + λI)·P with P the reversal: m[i, j] = a[n−1−i, n−1−j] + λ·[i = j].</summary>
    public static void ReverseDamped(Index1D index, ArrayView<double> a, ArrayView<double> m, int n, double lambda)
    {
        int i = index / n, j = index % n;
        m[index] = a[(long)(n - 1 - i) * n + (n - 1 - j)] + (i == j ? lambda : 0.0);
    }

    /// <summary>
    /// One group of <see cref="Block"/> threads factors the diagonal block at (k0, k0) in shared memory (right-looking,
    /// thread t owns row t). A pivot that is not positive (or NaN) records its column + 1 in <paramref name="failure"/>[0]
    /// and leaves NaN behind, so nothing downstream looks valid.
    /// </summary>
    public static void FactorDiagonal(ArrayView<double> m, int n, int k0, int kb, ArrayView<int> failure)
    {
        ArrayView<double> tile = SharedMemory.Allocate<double>(Block * Block);
        int t = Group.IdxX;
        if (t < kb)
        {
            for (int c = 0; c <= t; c++)
            {
                tile[t * Block + c] = m[(long)(k0 + t) * n + k0 + c];
            }
        }

        Group.Barrier();
        for (int j = 0; j < kb; j++)
        {
            double pivot = tile[j * Block + j];
            bool positive = pivot > 0;
            double root = positive ? Math.Sqrt(pivot) : double.NaN;
            Group.Barrier();
            if (t == j)
            {
                tile[j * Block + j] = root;
                if (!positive && failure[0] == 0)
                {
                    failure[0] = k0 + j + 1;
                }
            }
            else if (t > j && t < kb)
            {
                tile[t * Block + j] /= root;
            }

            Group.Barrier();
            if (t > j && t < kb)
            {
                double ltj = tile[t * Block + j];
                for (int c = j + 1; c <= t; c++)
                {
                    tile[t * Block + c] -= ltj * tile[c * Block + j];
                }
            }

            Group.Barrier();
        }

        if (t < kb)
        {
            for (int c = 0; c <= t; c++)
            {
                m[(long)(k0 + t) * n + k0 + c] = tile[t * Block + c];
            }
        }
    }

    /// <summary>The panel below the diagonal block: L21 = A21·L11⁻ᵀ, a thread per row (forward substitution).</summary>
    public static void SolvePanel(ArrayView<double> m, int n, int k0, int kb)
    {
        ArrayView<double> l = SharedMemory.Allocate<double>(Block * Block);
        int t = Group.IdxX;
        for (int e = t; e < Block * Block; e += Group.DimX)
        {
            int i = e / Block, c = e % Block;
            l[e] = i < kb && c <= i ? m[(long)(k0 + i) * n + k0 + c] : 0.0;
        }

        Group.Barrier();
        int row = k0 + kb + Grid.IdxX * Group.DimX + t;
        if (row >= n)
        {
            return;
        }

        ArrayView<double> x = LocalMemory.Allocate<double>(Block);
        long offset = (long)row * n + k0;
        for (int j = 0; j < kb; j++)
        {
            double v = m[offset + j];
            for (int c = 0; c < j; c++)
            {
                v -= x[c] * l[j * Block + c];
            }

            x[j] = v / l[j * Block + j];
            m[offset + j] = x[j];
        }
    }

    /// <summary>
    /// The trailing update A22 −= L21·L21ᵀ on tiles at or below the diagonal: a group of 16×16 threads per 64×64
    /// tile, 4×4 values per thread, the panel's slices staged in shared memory.
    /// </summary>
    public static void TrailingUpdate(ArrayView<double> m, int n, int k0, int kb)
    {
        int tileRow = Grid.IdxY, tileColumn = Grid.IdxX;
        if (tileColumn > tileRow)
        {
            return;                 // above the diagonal: the whole group leaves together, before any barrier
        }

        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        ArrayView<double> left = SharedMemory.Allocate<double>(Step * Tile);
        ArrayView<double> right = SharedMemory.Allocate<double>(Step * Tile);
        int start = k0 + kb, size = n - start;
        int rowBase = tileRow * Tile, columnBase = tileColumn * Tile;
        double a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        double a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int k = 0; k < kb; k += Step)
        {
            for (int e = thread; e < Step * Tile; e += Threads * Threads)
            {
                int i = e / Step, c = e % Step;
                bool inside = k + c < kb;
                left[c * Tile + i] = inside && rowBase + i < size ? m[(long)(start + rowBase + i) * n + k0 + k + c] : 0.0;
                right[c * Tile + i] = inside && columnBase + i < size ? m[(long)(start + columnBase + i) * n + k0 + k + c] : 0.0;
            }

            Group.Barrier();
            for (int s = 0; s < Step; s++)
            {
                double l0 = left[s * Tile + ty], l1 = left[s * Tile + ty + 16], l2 = left[s * Tile + ty + 32], l3 = left[s * Tile + ty + 48];
                double r0 = right[s * Tile + tx], r1 = right[s * Tile + tx + 16], r2 = right[s * Tile + tx + 32], r3 = right[s * Tile + tx + 48];
                a00 += l0 * r0; a01 += l0 * r1; a02 += l0 * r2; a03 += l0 * r3;
                a10 += l1 * r0; a11 += l1 * r1; a12 += l1 * r2; a13 += l1 * r3;
                a20 += l2 * r0; a21 += l2 * r1; a22 += l2 * r2; a23 += l2 * r3;
                a30 += l3 * r0; a31 += l3 * r1; a32 += l3 * r2; a33 += l3 * r3;
            }

            Group.Barrier();
        }

        // The strict upper part of diagonal tiles is updated too: harmless, only lower triangles are read later.
        SubtractRow(m, n, start, size, rowBase + ty, columnBase + tx, a00, a01, a02, a03);
        SubtractRow(m, n, start, size, rowBase + ty + 16, columnBase + tx, a10, a11, a12, a13);
        SubtractRow(m, n, start, size, rowBase + ty + 32, columnBase + tx, a20, a21, a22, a23);
        SubtractRow(m, n, start, size, rowBase + ty + 48, columnBase + tx, a30, a31, a32, a33);
    }

    private static void SubtractRow(ArrayView<double> m, int n, int start, int size, int row, int column, double v0, double v1, double v2, double v3)
    {
        if (row >= size)
        {
            return;
        }

        long offset = (long)(start + row) * n + start;
        if (column < size)
        {
            m[offset + column] -= v0;
        }

        if (column + 16 < size)
        {
            m[offset + column + 16] -= v1;
        }

        if (column + 32 < size)
        {
            m[offset + column + 32] -= v2;
        }

        if (column + 48 < size)
        {
            m[offset + column + 48] -= v3;
        }
    }

    /// <summary>Zeroes the strict upper triangle (the factorization leaves the input's values there).</summary>
    public static void ZeroStrictUpper(Index1D index, ArrayView<double> m, int n)
    {
        if (index % n > index / n)
        {
            m[index] = 0.0;
        }
    }

    /// <summary>
    /// Inverts the lower-triangular diagonal blocks of <see cref="Block"/> rows in place, a group per block: thread c
    /// computes column c of the inverse by forward substitution from a shared copy.
    /// </summary>
    public static void InvertLeaves(ArrayView<double> m, int n)
    {
        ArrayView<double> l = SharedMemory.Allocate<double>(Block * Block);
        ArrayView<double> x = SharedMemory.Allocate<double>(Block * Block);
        int t = Group.IdxX;
        int o = Grid.IdxX * Block, b = Math.Min(Block, n - o);
        for (int e = t; e < Block * Block; e += Group.DimX)
        {
            int i = e / Block, c = e % Block;
            l[e] = i < b && c <= i ? m[(long)(o + i) * n + o + c] : 0.0;
            x[e] = 0.0;
        }

        Group.Barrier();
        if (t < b)
        {
            int c = t;
            x[c * Block + c] = 1.0 / l[c * Block + c];
            for (int i = c + 1; i < b; i++)
            {
                double v = 0;
                for (int k = c; k < i; k++)
                {
                    v += l[i * Block + k] * x[k * Block + c];
                }

                x[i * Block + c] = -v / l[i * Block + i];
            }
        }

        Group.Barrier();
        for (int e = t; e < Block * Block; e += Group.DimX)
        {
            int i = e / Block, c = e % Block;
            if (i < b && c < b)
            {
                m[(long)(o + i) * n + o + c] = x[e];
            }
        }
    }

    /// <summary>
    /// C = α·A·B (+ C when <paramref name="accumulate"/> is 1), float64, row-major views with leading dimensions: a
    /// group of 16×16 threads per 64×64 tile of C, 4×4 per thread. C is not read when not accumulating.
    /// </summary>
    public static void Multiply(ArrayView<double> a, int lda, ArrayView<double> b, int ldb, ArrayView<double> c, int ldc, int m, int n, int k,
        double alpha, int accumulate)
    {
        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        ArrayView<double> left = SharedMemory.Allocate<double>(Step * Tile);
        ArrayView<double> right = SharedMemory.Allocate<double>(Step * Tile);
        int rowBase = Grid.IdxY * Tile, columnBase = Grid.IdxX * Tile;
        double a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        double a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int k0 = 0; k0 < k; k0 += Step)
        {
            for (int e = thread; e < Step * Tile; e += Threads * Threads)
            {
                int i = e / Step, s = e % Step;
                left[s * Tile + i] = rowBase + i < m && k0 + s < k ? a[(long)(rowBase + i) * lda + k0 + s] : 0.0;
                int kk = e / Tile, j = e % Tile;
                right[e] = k0 + kk < k && columnBase + j < n ? b[(long)(k0 + kk) * ldb + columnBase + j] : 0.0;
            }

            Group.Barrier();
            for (int s = 0; s < Step; s++)
            {
                double l0 = left[s * Tile + ty], l1 = left[s * Tile + ty + 16], l2 = left[s * Tile + ty + 32], l3 = left[s * Tile + ty + 48];
                double r0 = right[s * Tile + tx], r1 = right[s * Tile + tx + 16], r2 = right[s * Tile + tx + 32], r3 = right[s * Tile + tx + 48];
                a00 += l0 * r0; a01 += l0 * r1; a02 += l0 * r2; a03 += l0 * r3;
                a10 += l1 * r0; a11 += l1 * r1; a12 += l1 * r2; a13 += l1 * r3;
                a20 += l2 * r0; a21 += l2 * r1; a22 += l2 * r2; a23 += l2 * r3;
                a30 += l3 * r0; a31 += l3 * r1; a32 += l3 * r2; a33 += l3 * r3;
            }

            Group.Barrier();
        }

        StoreRow(c, ldc, m, n, rowBase + ty, columnBase + tx, alpha, accumulate, a00, a01, a02, a03);
        StoreRow(c, ldc, m, n, rowBase + ty + 16, columnBase + tx, alpha, accumulate, a10, a11, a12, a13);
        StoreRow(c, ldc, m, n, rowBase + ty + 32, columnBase + tx, alpha, accumulate, a20, a21, a22, a23);
        StoreRow(c, ldc, m, n, rowBase + ty + 48, columnBase + tx, alpha, accumulate, a30, a31, a32, a33);
    }

    private static void StoreRow(ArrayView<double> c, int ldc, int m, int n, int row, int column, double alpha, int accumulate,
        double v0, double v1, double v2, double v3)
    {
        if (row >= m)
        {
            return;
        }

        long offset = (long)row * ldc;
        Store(c, offset, column, n, alpha, accumulate, v0);
        Store(c, offset, column + 16, n, alpha, accumulate, v1);
        Store(c, offset, column + 32, n, alpha, accumulate, v2);
        Store(c, offset, column + 48, n, alpha, accumulate, v3);
    }

    private static void Store(ArrayView<double> c, long offset, int column, int n, double alpha, int accumulate, double value)
    {
        if (column < n)
        {
            c[offset + column] = accumulate != 0 ? c[offset + column] + alpha * value : alpha * value;
        }
    }

    /// <summary>
    /// U = P·L⁻¹·P as float32, upper triangular: upper[i, j] = inverse[n−1−i, n−1−j] for j ≥ i, 0 below. A value
    /// that is not finite sets <paramref name="failure"/>[1].
    /// </summary>
    public static void ReverseToUpper(Index1D index, ArrayView<double> inverse, ArrayView<float> upper, int n, ArrayView<int> failure)
    {
        int i = index / n, j = index % n;
        if (j < i)
        {
            upper[index] = 0f;
            return;
        }

        double v = inverse[(long)(n - 1 - i) * n + (n - 1 - j)];
        if (!double.IsFinite(v))
        {
            failure[1] = 1;
        }

        upper[index] = (float)v;
    }
}
