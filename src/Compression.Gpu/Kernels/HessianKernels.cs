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

    private static void Update(ArrayView<float> m, long offset, bool overwrite, int column, int columns, float alpha, float beta, float value)
    {
        if (column < columns)
        {
            m[offset + column] = overwrite ? value : alpha * m[offset + column] + beta * value;
        }
    }

    /// <summary>
    /// M ← α·M + β·Σ_z partials[z] on and above the diagonal, the slices added in order z = 0, 1, … (deterministic).
    /// </summary>
    public static void ReduceSplits(Index1D index, ArrayView<float> m, ArrayView<float> partials, int columns, int splits, float alpha, float beta)
    {
        int row = index / columns, column = index % columns;
        if (column < row)
        {
            return;
        }

        long size = (long)columns * columns;
        float sum = 0;
        for (int z = 0; z < splits; z++)
        {
            sum += partials[z * size + index];
        }

        m[index] = alpha * m[index] + beta * sum;
    }

    /// <summary>Tile edge of <see cref="SyrkUpdateWide"/>.</summary>
    public const int WideTile = 128;

    /// <summary>Rows of X staged per step by <see cref="SyrkUpdateWide"/>.</summary>
    public const int WideStep = 8;

    /// <summary>
    /// <see cref="SyrkUpdate"/> with 128×128 tiles, 8×8 values per thread (rows ty + 16·a, columns tx + 16·b): twice
    /// the reuse of each staged value, for wide layers (at least 1024 features, where enough tiles remain to fill the
    /// device). The 64 accumulators are named variables so that they stay in registers.
    /// </summary>
    public static void SyrkUpdateWide(ArrayView<float> x, ArrayView<float> m, int rows, int columns, float alpha, float beta)
    {
        int tileRow = Grid.IdxY, tileColumn = Grid.IdxX;
        if (tileColumn < tileRow)
        {
            return;                 // below the diagonal: the whole group leaves together, before any barrier
        }

        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        ArrayView<float> left = SharedMemory.Allocate<float>(WideStep * WideTile);
        ArrayView<float> right = SharedMemory.Allocate<float>(WideStep * WideTile);
        int rowBase = tileRow * WideTile, columnBase = tileColumn * WideTile;
        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a04 = 0, a05 = 0, a06 = 0, a07 = 0;
        float a10 = 0, a11 = 0, a12 = 0, a13 = 0, a14 = 0, a15 = 0, a16 = 0, a17 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a24 = 0, a25 = 0, a26 = 0, a27 = 0;
        float a30 = 0, a31 = 0, a32 = 0, a33 = 0, a34 = 0, a35 = 0, a36 = 0, a37 = 0;
        float a40 = 0, a41 = 0, a42 = 0, a43 = 0, a44 = 0, a45 = 0, a46 = 0, a47 = 0;
        float a50 = 0, a51 = 0, a52 = 0, a53 = 0, a54 = 0, a55 = 0, a56 = 0, a57 = 0;
        float a60 = 0, a61 = 0, a62 = 0, a63 = 0, a64 = 0, a65 = 0, a66 = 0, a67 = 0;
        float a70 = 0, a71 = 0, a72 = 0, a73 = 0, a74 = 0, a75 = 0, a76 = 0, a77 = 0;
        for (int k0 = 0; k0 < rows; k0 += WideStep)
        {
            for (int e = thread; e < WideStep * WideTile; e += Threads * Threads)
            {
                int k = e / WideTile, c = e % WideTile;
                bool inRows = k0 + k < rows;
                left[e] = inRows && rowBase + c < columns ? x[(long)(k0 + k) * columns + rowBase + c] : 0f;
                right[e] = inRows && columnBase + c < columns ? x[(long)(k0 + k) * columns + columnBase + c] : 0f;
            }

            Group.Barrier();
            for (int k = 0; k < WideStep; k++)
            {
                int o = k * WideTile;
                float l0 = left[o + ty + 0]; float l1 = left[o + ty + 16]; float l2 = left[o + ty + 32]; float l3 = left[o + ty + 48]; float l4 = left[o + ty + 64]; float l5 = left[o + ty + 80]; float l6 = left[o + ty + 96]; float l7 = left[o + ty + 112];
                float r0 = right[o + tx + 0]; float r1 = right[o + tx + 16]; float r2 = right[o + tx + 32]; float r3 = right[o + tx + 48]; float r4 = right[o + tx + 64]; float r5 = right[o + tx + 80]; float r6 = right[o + tx + 96]; float r7 = right[o + tx + 112];
                a00 += l0 * r0; a01 += l0 * r1; a02 += l0 * r2; a03 += l0 * r3; a04 += l0 * r4; a05 += l0 * r5; a06 += l0 * r6; a07 += l0 * r7;
                a10 += l1 * r0; a11 += l1 * r1; a12 += l1 * r2; a13 += l1 * r3; a14 += l1 * r4; a15 += l1 * r5; a16 += l1 * r6; a17 += l1 * r7;
                a20 += l2 * r0; a21 += l2 * r1; a22 += l2 * r2; a23 += l2 * r3; a24 += l2 * r4; a25 += l2 * r5; a26 += l2 * r6; a27 += l2 * r7;
                a30 += l3 * r0; a31 += l3 * r1; a32 += l3 * r2; a33 += l3 * r3; a34 += l3 * r4; a35 += l3 * r5; a36 += l3 * r6; a37 += l3 * r7;
                a40 += l4 * r0; a41 += l4 * r1; a42 += l4 * r2; a43 += l4 * r3; a44 += l4 * r4; a45 += l4 * r5; a46 += l4 * r6; a47 += l4 * r7;
                a50 += l5 * r0; a51 += l5 * r1; a52 += l5 * r2; a53 += l5 * r3; a54 += l5 * r4; a55 += l5 * r5; a56 += l5 * r6; a57 += l5 * r7;
                a60 += l6 * r0; a61 += l6 * r1; a62 += l6 * r2; a63 += l6 * r3; a64 += l6 * r4; a65 += l6 * r5; a66 += l6 * r6; a67 += l6 * r7;
                a70 += l7 * r0; a71 += l7 * r1; a72 += l7 * r2; a73 += l7 * r3; a74 += l7 * r4; a75 += l7 * r5; a76 += l7 * r6; a77 += l7 * r7;
            }

            Group.Barrier();
        }

        StoreWide(m, columns, rowBase + ty + 0, columnBase + tx, alpha, beta, a00, a01, a02, a03, a04, a05, a06, a07);
        StoreWide(m, columns, rowBase + ty + 16, columnBase + tx, alpha, beta, a10, a11, a12, a13, a14, a15, a16, a17);
        StoreWide(m, columns, rowBase + ty + 32, columnBase + tx, alpha, beta, a20, a21, a22, a23, a24, a25, a26, a27);
        StoreWide(m, columns, rowBase + ty + 48, columnBase + tx, alpha, beta, a30, a31, a32, a33, a34, a35, a36, a37);
        StoreWide(m, columns, rowBase + ty + 64, columnBase + tx, alpha, beta, a40, a41, a42, a43, a44, a45, a46, a47);
        StoreWide(m, columns, rowBase + ty + 80, columnBase + tx, alpha, beta, a50, a51, a52, a53, a54, a55, a56, a57);
        StoreWide(m, columns, rowBase + ty + 96, columnBase + tx, alpha, beta, a60, a61, a62, a63, a64, a65, a66, a67);
        StoreWide(m, columns, rowBase + ty + 112, columnBase + tx, alpha, beta, a70, a71, a72, a73, a74, a75, a76, a77);
    }

    /// <summary>
    /// <see cref="SyrkUpdateWide"/> with the next step's slices fetched into registers while the current one is
    /// multiplied, and two shared buffers: one barrier per step and the global-memory latency hidden behind the
    /// products instead of exposed once per step.
    /// </summary>
    /// <remarks>
    /// With more than one group along Z (split K, for layers too narrow to fill the device with tiles), group z takes
    /// rows [z·rowsPerSplit, (z + 1)·rowsPerSplit) and writes its raw sums to <paramref name="partials"/> slice z;
    /// <see cref="ReduceSplits"/> then adds the slices in a fixed order, so results do not depend on scheduling.
    /// </remarks>
    public static void SyrkUpdatePipelined(ArrayView<float> x, ArrayView<float> m, ArrayView<float> partials,
        int allRows, int columns, int rowsPerSplit, float alpha, float beta)
    {
        int tileRow = Grid.IdxY, tileColumn = Grid.IdxX;
        if (tileColumn < tileRow)
        {
            return;
        }

        int split = Grid.IdxZ;
        bool splitK = Grid.DimZ > 1;
        int firstRow = split * rowsPerSplit;
        int rows = IntrinsicMath.Min(allRows - firstRow, rowsPerSplit);
        x = x.SubView((long)firstRow * columns);
        ArrayView<float> target = splitK ? partials.SubView((long)split * columns * columns) : m;

        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        const int Slice = WideStep * WideTile;
        ArrayView<float> leftBuffers = SharedMemory.Allocate<float>(2 * Slice);
        ArrayView<float> rightBuffers = SharedMemory.Allocate<float>(2 * Slice);
        int rowBase = tileRow * WideTile, columnBase = tileColumn * WideTile;

        // Each thread moves four values of each slice per step: column c of rows k, k + 2, k + 4, k + 6.
        int c = thread % WideTile, k = thread / WideTile;
        bool leftIn = rowBase + c < columns, rightIn = columnBase + c < columns;
        long leftColumn = rowBase + c, rightColumn = columnBase + c;
        float p0 = 0, p1 = 0, p2 = 0, p3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
        Fetch(x, rows, columns, 0, k, leftIn, leftColumn, out p0, out p1, out p2, out p3);
        Fetch(x, rows, columns, 0, k, rightIn, rightColumn, out q0, out q1, out q2, out q3);
        Stage(leftBuffers, c, k, p0, p1, p2, p3);
        Stage(rightBuffers, c, k, q0, q1, q2, q3);
        Group.Barrier();

        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a04 = 0, a05 = 0, a06 = 0, a07 = 0;
        float a10 = 0, a11 = 0, a12 = 0, a13 = 0, a14 = 0, a15 = 0, a16 = 0, a17 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a24 = 0, a25 = 0, a26 = 0, a27 = 0;
        float a30 = 0, a31 = 0, a32 = 0, a33 = 0, a34 = 0, a35 = 0, a36 = 0, a37 = 0;
        float a40 = 0, a41 = 0, a42 = 0, a43 = 0, a44 = 0, a45 = 0, a46 = 0, a47 = 0;
        float a50 = 0, a51 = 0, a52 = 0, a53 = 0, a54 = 0, a55 = 0, a56 = 0, a57 = 0;
        float a60 = 0, a61 = 0, a62 = 0, a63 = 0, a64 = 0, a65 = 0, a66 = 0, a67 = 0;
        float a70 = 0, a71 = 0, a72 = 0, a73 = 0, a74 = 0, a75 = 0, a76 = 0, a77 = 0;
        int current = 0;
        for (int k0 = 0; k0 < rows; k0 += WideStep)
        {
            bool more = k0 + WideStep < rows;
            if (more)
            {
                Fetch(x, rows, columns, k0 + WideStep, k, leftIn, leftColumn, out p0, out p1, out p2, out p3);
                Fetch(x, rows, columns, k0 + WideStep, k, rightIn, rightColumn, out q0, out q1, out q2, out q3);
            }

            ArrayView<float> left = leftBuffers.SubView(current * Slice, Slice);
            ArrayView<float> right = rightBuffers.SubView(current * Slice, Slice);
            for (int s = 0; s < WideStep; s++)
            {
                int o = s * WideTile;
                float l0 = left[o + ty + 0]; float l1 = left[o + ty + 16]; float l2 = left[o + ty + 32]; float l3 = left[o + ty + 48]; float l4 = left[o + ty + 64]; float l5 = left[o + ty + 80]; float l6 = left[o + ty + 96]; float l7 = left[o + ty + 112];
                float r0 = right[o + tx + 0]; float r1 = right[o + tx + 16]; float r2 = right[o + tx + 32]; float r3 = right[o + tx + 48]; float r4 = right[o + tx + 64]; float r5 = right[o + tx + 80]; float r6 = right[o + tx + 96]; float r7 = right[o + tx + 112];
                a00 += l0 * r0; a01 += l0 * r1; a02 += l0 * r2; a03 += l0 * r3; a04 += l0 * r4; a05 += l0 * r5; a06 += l0 * r6; a07 += l0 * r7;
                a10 += l1 * r0; a11 += l1 * r1; a12 += l1 * r2; a13 += l1 * r3; a14 += l1 * r4; a15 += l1 * r5; a16 += l1 * r6; a17 += l1 * r7;
                a20 += l2 * r0; a21 += l2 * r1; a22 += l2 * r2; a23 += l2 * r3; a24 += l2 * r4; a25 += l2 * r5; a26 += l2 * r6; a27 += l2 * r7;
                a30 += l3 * r0; a31 += l3 * r1; a32 += l3 * r2; a33 += l3 * r3; a34 += l3 * r4; a35 += l3 * r5; a36 += l3 * r6; a37 += l3 * r7;
                a40 += l4 * r0; a41 += l4 * r1; a42 += l4 * r2; a43 += l4 * r3; a44 += l4 * r4; a45 += l4 * r5; a46 += l4 * r6; a47 += l4 * r7;
                a50 += l5 * r0; a51 += l5 * r1; a52 += l5 * r2; a53 += l5 * r3; a54 += l5 * r4; a55 += l5 * r5; a56 += l5 * r6; a57 += l5 * r7;
                a60 += l6 * r0; a61 += l6 * r1; a62 += l6 * r2; a63 += l6 * r3; a64 += l6 * r4; a65 += l6 * r5; a66 += l6 * r6; a67 += l6 * r7;
                a70 += l7 * r0; a71 += l7 * r1; a72 += l7 * r2; a73 += l7 * r3; a74 += l7 * r4; a75 += l7 * r5; a76 += l7 * r6; a77 += l7 * r7;
            }

            if (more)
            {
                // The other buffer was last read before the previous barrier, so it can be overwritten now.
                Stage(leftBuffers.SubView((1 - current) * Slice, Slice), c, k, p0, p1, p2, p3);
                Stage(rightBuffers.SubView((1 - current) * Slice, Slice), c, k, q0, q1, q2, q3);
            }

            Group.Barrier();
            current = 1 - current;
        }

        StoreWide(target, columns, rowBase + ty + 0, columnBase + tx, alpha, beta, splitK, a00, a01, a02, a03, a04, a05, a06, a07);
        StoreWide(target, columns, rowBase + ty + 16, columnBase + tx, alpha, beta, splitK, a10, a11, a12, a13, a14, a15, a16, a17);
        StoreWide(target, columns, rowBase + ty + 32, columnBase + tx, alpha, beta, splitK, a20, a21, a22, a23, a24, a25, a26, a27);
        StoreWide(target, columns, rowBase + ty + 48, columnBase + tx, alpha, beta, splitK, a30, a31, a32, a33, a34, a35, a36, a37);
        StoreWide(target, columns, rowBase + ty + 64, columnBase + tx, alpha, beta, splitK, a40, a41, a42, a43, a44, a45, a46, a47);
        StoreWide(target, columns, rowBase + ty + 80, columnBase + tx, alpha, beta, splitK, a50, a51, a52, a53, a54, a55, a56, a57);
        StoreWide(target, columns, rowBase + ty + 96, columnBase + tx, alpha, beta, splitK, a60, a61, a62, a63, a64, a65, a66, a67);
        StoreWide(target, columns, rowBase + ty + 112, columnBase + tx, alpha, beta, splitK, a70, a71, a72, a73, a74, a75, a76, a77);
    }

    /// <summary>
    /// <see cref="SyrkUpdatePipelined"/> with 16-byte shared-memory reads: thread (tx, ty) owns rows
    /// 4·ty … 4·ty + 3 and 64 + 4·ty … 64 + 4·ty + 3 of the tile and the same pattern of columns with tx, so each step
    /// of k reads its 8 + 8 operands with four 16-byte loads instead of sixteen 4-byte ones. A warp (tx 0–15, two
    /// values of ty) then needs 6 shared-memory wavefronts per k (the left loads broadcast two addresses each; the
    /// right loads cover 256 contiguous bytes, two wavefronts each) against 16, which leaves the 64 multiply–adds
    /// per k, not shared memory, as the limit. Staging, pipelining and split K are those of <see cref="SyrkUpdatePipelined"/>, and
    /// every value sums the same products in the same order, so the results are identical.
    /// </summary>
    public static void SyrkUpdatePipelinedQuads(ArrayView<float> x, ArrayView<float> m, ArrayView<float> partials,
        int allRows, int columns, int rowsPerSplit, float alpha, float beta)
    {
        int tileRow = Grid.IdxY, tileColumn = Grid.IdxX;
        if (tileColumn < tileRow)
        {
            return;
        }

        int split = Grid.IdxZ;
        bool splitK = Grid.DimZ > 1;
        int firstRow = split * rowsPerSplit;
        int rows = IntrinsicMath.Min(allRows - firstRow, rowsPerSplit);
        x = x.SubView((long)firstRow * columns);
        ArrayView<float> target = splitK ? partials.SubView((long)split * columns * columns) : m;

        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        const int Slice = WideStep * WideTile;
        // Allocated as 16-byte quads so that the quad reads are aligned; staged through a float view of the same memory.
        ArrayView<SharedQuad> leftQuads = SharedMemory.Allocate<SharedQuad>(2 * Slice / 4);
        ArrayView<SharedQuad> rightQuads = SharedMemory.Allocate<SharedQuad>(2 * Slice / 4);
        ArrayView<float> leftBuffers = leftQuads.Cast<float>();
        ArrayView<float> rightBuffers = rightQuads.Cast<float>();
        int rowBase = tileRow * WideTile, columnBase = tileColumn * WideTile;

        int c = thread % WideTile, k = thread / WideTile;
        bool leftIn = rowBase + c < columns, rightIn = columnBase + c < columns;
        long leftColumn = rowBase + c, rightColumn = columnBase + c;
        float p0 = 0, p1 = 0, p2 = 0, p3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
        Fetch(x, rows, columns, 0, k, leftIn, leftColumn, out p0, out p1, out p2, out p3);
        Fetch(x, rows, columns, 0, k, rightIn, rightColumn, out q0, out q1, out q2, out q3);
        Stage(leftBuffers, c, k, p0, p1, p2, p3);
        Stage(rightBuffers, c, k, q0, q1, q2, q3);
        Group.Barrier();

        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a04 = 0, a05 = 0, a06 = 0, a07 = 0;
        float a10 = 0, a11 = 0, a12 = 0, a13 = 0, a14 = 0, a15 = 0, a16 = 0, a17 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a24 = 0, a25 = 0, a26 = 0, a27 = 0;
        float a30 = 0, a31 = 0, a32 = 0, a33 = 0, a34 = 0, a35 = 0, a36 = 0, a37 = 0;
        float a40 = 0, a41 = 0, a42 = 0, a43 = 0, a44 = 0, a45 = 0, a46 = 0, a47 = 0;
        float a50 = 0, a51 = 0, a52 = 0, a53 = 0, a54 = 0, a55 = 0, a56 = 0, a57 = 0;
        float a60 = 0, a61 = 0, a62 = 0, a63 = 0, a64 = 0, a65 = 0, a66 = 0, a67 = 0;
        float a70 = 0, a71 = 0, a72 = 0, a73 = 0, a74 = 0, a75 = 0, a76 = 0, a77 = 0;
        int current = 0;
        for (int k0 = 0; k0 < rows; k0 += WideStep)
        {
            bool more = k0 + WideStep < rows;
            if (more)
            {
                Fetch(x, rows, columns, k0 + WideStep, k, leftIn, leftColumn, out p0, out p1, out p2, out p3);
                Fetch(x, rows, columns, k0 + WideStep, k, rightIn, rightColumn, out q0, out q1, out q2, out q3);
            }

            int quadBase = current * (Slice / 4);
            for (int s = 0; s < WideStep; s++)
            {
                // Row s of the slice is 32 quads: quads ty and 16 + ty on the left, tx and 16 + tx on the right.
                int o = quadBase + s * (WideTile / 4);
                SharedQuad L0 = leftQuads[o + ty], L1 = leftQuads[o + 16 + ty];
                SharedQuad R0 = rightQuads[o + tx], R1 = rightQuads[o + 16 + tx];
                float l0 = L0.X, l1 = L0.Y, l2 = L0.Z, l3 = L0.W, l4 = L1.X, l5 = L1.Y, l6 = L1.Z, l7 = L1.W;
                float r0 = R0.X, r1 = R0.Y, r2 = R0.Z, r3 = R0.W, r4 = R1.X, r5 = R1.Y, r6 = R1.Z, r7 = R1.W;
                a00 += l0 * r0; a01 += l0 * r1; a02 += l0 * r2; a03 += l0 * r3; a04 += l0 * r4; a05 += l0 * r5; a06 += l0 * r6; a07 += l0 * r7;
                a10 += l1 * r0; a11 += l1 * r1; a12 += l1 * r2; a13 += l1 * r3; a14 += l1 * r4; a15 += l1 * r5; a16 += l1 * r6; a17 += l1 * r7;
                a20 += l2 * r0; a21 += l2 * r1; a22 += l2 * r2; a23 += l2 * r3; a24 += l2 * r4; a25 += l2 * r5; a26 += l2 * r6; a27 += l2 * r7;
                a30 += l3 * r0; a31 += l3 * r1; a32 += l3 * r2; a33 += l3 * r3; a34 += l3 * r4; a35 += l3 * r5; a36 += l3 * r6; a37 += l3 * r7;
                a40 += l4 * r0; a41 += l4 * r1; a42 += l4 * r2; a43 += l4 * r3; a44 += l4 * r4; a45 += l4 * r5; a46 += l4 * r6; a47 += l4 * r7;
                a50 += l5 * r0; a51 += l5 * r1; a52 += l5 * r2; a53 += l5 * r3; a54 += l5 * r4; a55 += l5 * r5; a56 += l5 * r6; a57 += l5 * r7;
                a60 += l6 * r0; a61 += l6 * r1; a62 += l6 * r2; a63 += l6 * r3; a64 += l6 * r4; a65 += l6 * r5; a66 += l6 * r6; a67 += l6 * r7;
                a70 += l7 * r0; a71 += l7 * r1; a72 += l7 * r2; a73 += l7 * r3; a74 += l7 * r4; a75 += l7 * r5; a76 += l7 * r6; a77 += l7 * r7;
            }

            if (more)
            {
                Stage(leftBuffers.SubView((1 - current) * Slice, Slice), c, k, p0, p1, p2, p3);
                Stage(rightBuffers.SubView((1 - current) * Slice, Slice), c, k, q0, q1, q2, q3);
            }

            Group.Barrier();
            current = 1 - current;
        }

        StoreQuads(target, columns, rowBase + ty * 4 + 0, columnBase + tx * 4, alpha, beta, splitK, a00, a01, a02, a03, a04, a05, a06, a07);
        StoreQuads(target, columns, rowBase + ty * 4 + 1, columnBase + tx * 4, alpha, beta, splitK, a10, a11, a12, a13, a14, a15, a16, a17);
        StoreQuads(target, columns, rowBase + ty * 4 + 2, columnBase + tx * 4, alpha, beta, splitK, a20, a21, a22, a23, a24, a25, a26, a27);
        StoreQuads(target, columns, rowBase + ty * 4 + 3, columnBase + tx * 4, alpha, beta, splitK, a30, a31, a32, a33, a34, a35, a36, a37);
        StoreQuads(target, columns, rowBase + 64 + ty * 4 + 0, columnBase + tx * 4, alpha, beta, splitK, a40, a41, a42, a43, a44, a45, a46, a47);
        StoreQuads(target, columns, rowBase + 64 + ty * 4 + 1, columnBase + tx * 4, alpha, beta, splitK, a50, a51, a52, a53, a54, a55, a56, a57);
        StoreQuads(target, columns, rowBase + 64 + ty * 4 + 2, columnBase + tx * 4, alpha, beta, splitK, a60, a61, a62, a63, a64, a65, a66, a67);
        StoreQuads(target, columns, rowBase + 64 + ty * 4 + 3, columnBase + tx * 4, alpha, beta, splitK, a70, a71, a72, a73, a74, a75, a76, a77);
    }

    /// <summary>Row <paramref name="row"/>, columns column … column + 3 and column + 64 … column + 67 (the layout of
    /// <see cref="SyrkUpdatePipelinedQuads"/>).</summary>
    private static void StoreQuads(ArrayView<float> m, int columns, int row, int column, float alpha, float beta, bool overwrite,
        float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7)
    {
        if (row >= columns)
        {
            return;
        }

        long offset = (long)row * columns;
        Update(m, offset, overwrite, column, columns, alpha, beta, v0);
        Update(m, offset, overwrite, column + 1, columns, alpha, beta, v1);
        Update(m, offset, overwrite, column + 2, columns, alpha, beta, v2);
        Update(m, offset, overwrite, column + 3, columns, alpha, beta, v3);
        Update(m, offset, overwrite, column + 64, columns, alpha, beta, v4);
        Update(m, offset, overwrite, column + 65, columns, alpha, beta, v5);
        Update(m, offset, overwrite, column + 66, columns, alpha, beta, v6);
        Update(m, offset, overwrite, column + 67, columns, alpha, beta, v7);
    }

    private static void Fetch(ArrayView<float> x, int rows, int columns, int k0, int k, bool inColumns, long column,
        out float v0, out float v1, out float v2, out float v3)
    {
        long row = k0 + k;
        v0 = inColumns && row < rows ? x[row * columns + column] : 0f;
        v1 = inColumns && row + 2 < rows ? x[(row + 2) * columns + column] : 0f;
        v2 = inColumns && row + 4 < rows ? x[(row + 4) * columns + column] : 0f;
        v3 = inColumns && row + 6 < rows ? x[(row + 6) * columns + column] : 0f;
    }

    private static void Stage(ArrayView<float> slice, int c, int k, float v0, float v1, float v2, float v3)
    {
        slice[k * WideTile + c] = v0;
        slice[(k + 2) * WideTile + c] = v1;
        slice[(k + 4) * WideTile + c] = v2;
        slice[(k + 6) * WideTile + c] = v3;
    }

    private static void StoreWide(ArrayView<float> m, int columns, int row, int column, float alpha, float beta,
        float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7) =>
        StoreWide(m, columns, row, column, alpha, beta, overwrite: false, v0, v1, v2, v3, v4, v5, v6, v7);

    // overwrite: a split-K partial, stored as is (its buffer holds stale values that must not be scaled into it).
    private static void StoreWide(ArrayView<float> m, int columns, int row, int column, float alpha, float beta, bool overwrite,
        float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7)
    {
        if (row >= columns)
        {
            return;
        }

        long offset = (long)row * columns;
        Update(m, offset, overwrite, column, columns, alpha, beta, v0);
        Update(m, offset, overwrite, column + 16, columns, alpha, beta, v1);
        Update(m, offset, overwrite, column + 32, columns, alpha, beta, v2);
        Update(m, offset, overwrite, column + 48, columns, alpha, beta, v3);
        Update(m, offset, overwrite, column + 64, columns, alpha, beta, v4);
        Update(m, offset, overwrite, column + 80, columns, alpha, beta, v5);
        Update(m, offset, overwrite, column + 96, columns, alpha, beta, v6);
        Update(m, offset, overwrite, column + 112, columns, alpha, beta, v7);
    }
}

/// <summary>Four consecutive floats of shared memory: one 16-byte load (ld.shared.v4.f32 on CUDA).</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
internal struct SharedQuad
{
    public float X;
    public float Y;
    public float Z;
    public float W;
}
