// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using ILGPU;

namespace Compression.Gpu.Kernels;

/// <summary>
/// Device code of the Hessian accumulation <c>M ← α·M + β·XᵀX</c> for a batch X (rows × columns, row-major). A group
/// of 16×16 threads computes one 64×64 tile of M, each thread a 4×4 block in registers; the two 16×64 slices of X a
/// step needs are staged in shared memory, so every loaded value is used 64 times. Only tiles on or above the
/// diagonal are computed (M is symmetric); the host mirrors the upper triangle when reading.
/// </summary>
internal static class HessianKernels
{
    public const int Tile = 64;
    public const int Step = 16;
    public const int Threads = 16;

    public static void SyrkUpdate(ArrayView<float> x, ArrayView<float> m, int rows, int columns, float alpha, float beta)
    {
        int tileRow = Grid.IdxY, tileColumn = Grid.IdxX;
        if (tileColumn < tileRow)
        {
            return;                 // below the diagonal: the whole group leaves together, before any barrier
        }

        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        ArrayView<float> left = SharedMemory.Allocate<float>(Step * Tile);    // X[k, tileRow·64 + i]
        ArrayView<float> right = SharedMemory.Allocate<float>(Step * Tile);   // X[k, tileColumn·64 + j]
        int rowBase = tileRow * Tile, columnBase = tileColumn * Tile;

        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int k0 = 0; k0 < rows; k0 += Step)
        {
            // 256 threads load 2 × 16 × 64 values: four each per slice, consecutive threads on consecutive columns.
            for (int e = thread; e < Step * Tile; e += Threads * Threads)
            {
                int k = e / Tile, c = e % Tile;
                bool inRows = k0 + k < rows;
                left[e] = inRows && rowBase + c < columns ? x[(long)(k0 + k) * columns + rowBase + c] : 0f;
                right[e] = inRows && columnBase + c < columns ? x[(long)(k0 + k) * columns + columnBase + c] : 0f;
            }

            Group.Barrier();
            for (int k = 0; k < Step; k++)
            {
                // Thread (tx, ty) owns rows ty + 16·r and columns tx + 16·s of the tile: bank-conflict-free reads.
                float l0 = left[k * Tile + ty], l1 = left[k * Tile + ty + 16], l2 = left[k * Tile + ty + 32], l3 = left[k * Tile + ty + 48];
                float r0 = right[k * Tile + tx], r1 = right[k * Tile + tx + 16], r2 = right[k * Tile + tx + 32], r3 = right[k * Tile + tx + 48];
                a00 += l0 * r0; a01 += l0 * r1; a02 += l0 * r2; a03 += l0 * r3;
                a10 += l1 * r0; a11 += l1 * r1; a12 += l1 * r2; a13 += l1 * r3;
                a20 += l2 * r0; a21 += l2 * r1; a22 += l2 * r2; a23 += l2 * r3;
                a30 += l3 * r0; a31 += l3 * r1; a32 += l3 * r2; a33 += l3 * r3;
            }

            Group.Barrier();
        }

        Store(m, columns, rowBase + ty, columnBase + tx, alpha, beta, a00, a01, a02, a03);
        Store(m, columns, rowBase + ty + 16, columnBase + tx, alpha, beta, a10, a11, a12, a13);
        Store(m, columns, rowBase + ty + 32, columnBase + tx, alpha, beta, a20, a21, a22, a23);
        Store(m, columns, rowBase + ty + 48, columnBase + tx, alpha, beta, a30, a31, a32, a33);
    }

    private static void Store(ArrayView<float> m, int columns, int row, int column, float alpha, float beta, float v0, float v1, float v2, float v3)
    {
        if (row >= columns)
        {
            return;
        }

        long offset = (long)row * columns;
        Update(m, offset, column, columns, alpha, beta, v0);
        Update(m, offset, column + 16, columns, alpha, beta, v1);
        Update(m, offset, column + 32, columns, alpha, beta, v2);
        Update(m, offset, column + 48, columns, alpha, beta, v3);
    }

    private static void Update(ArrayView<float> m, long offset, int column, int columns, float alpha, float beta, float value)
    {
        if (column < columns)
        {
            m[offset + column] = alpha * m[offset + column] + beta * value;
        }
    }
}
