// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>The scalars of one block of the GPU sweep (kernel parameters must be blittable: flags are ints).</summary>
internal readonly struct GptqSweepSpec
{
    public int Rows { get; init; }
    public int Columns { get; init; }
    public int First { get; init; }
    public int End { get; init; }
    public int GroupSize { get; init; }
    public int Groups { get; init; }

    /// <summary>1: static groups (parameters fixed in advance, <c>groupOfColumn</c> maps columns to them); 0: dynamic.</summary>
    public int StaticGroups { get; init; }

    public float TensorScale { get; init; }
}

/// <summary>
/// Device code of GPTQ: the in-block sweep (one thread per row: rows are independent given U), the lazy update as a
/// tiled GEMM, and the objective's quadratic forms in float64. The element and scale arithmetic is
/// <see cref="QuantizeKernels"/>', which equals the CPU formats' bit for bit.
/// </summary>
internal static class GptqDeviceKernels
{
    public const int Tile = 64;
    public const int Step = 16;
    public const int Threads = 16;

    /// <summary>The widest block <see cref="SweepBlockWarp"/> holds (slots of 32 columns per lane).</summary>
    public const int MaxWarpSlots = 16;

    /// <summary>Rows (warps) per thread group of <see cref="SweepBlockWarp"/>.</summary>
    public const int WarpsPerGroup = 4;

    /// <summary>
    /// The in-block sweep with a warp per row: lane l holds columns l, l + 32, … of the row's block in local memory
    /// (registers or L1); a quantized column's q goes back to W, as in the reference. Per column, the owner lane's
    /// value is broadcast by a shuffle, every lane computes the same code and error, and each lane updates its own
    /// later columns with U's row read coalesced. A dynamic group's statistics are a masked butterfly reduction over
    /// the block (max, min and max |w| are order-free, so they equal the CPU's); a per-channel group, which spans the
    /// row, is reduced from the row in global memory at its first column, before any update. Blocks up to
    /// <see cref="MaxWarpSlots"/>·32 columns.
    /// </summary>
    public static void SweepBlockWarp(ArrayView<float> w, ArrayView<float> upper, ArrayView<byte> codes, ArrayView<float> errors,
        ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<int> groupOfColumn, GptqSweepSpec sweep, GpuFormatSpec spec)
    {
        int lane = Warp.LaneIdx;
        int row = Grid.IdxX * WarpsPerGroup + Group.IdxX / Warp.WarpSize;
        if (row >= sweep.Rows)
        {
            return;                                             // whole warps leave; the kernel has no group barrier
        }

        int columns = sweep.Columns, first = sweep.First, width = sweep.End - first;
        int slots = (width + 31) / 32;
        long rowStart = (long)row * columns;
        ArrayView<float> v = LocalMemory.Allocate<float>(MaxWarpSlots);
        for (int t = 0; t < slots; t++)
        {
            int c = t * 32 + lane;
            v[t] = c < width ? w[rowStart + first + c] : 0f;
        }

        bool asymmetric = spec.Element == GpuElementKind.IntegerAsymmetric;
        int mask = (1 << spec.CodeBits) - 1;
        float scale = 0;
        int zero = 0;
        if (sweep.StaticGroups == 0 && first % sweep.GroupSize != 0)
        {
            // A per-channel group chosen in an earlier block.
            long parameter = (long)row * sweep.Groups + first / sweep.GroupSize;
            scale = scales[parameter];
            zero = asymmetric ? zeros[parameter] : 0;
        }

        for (int j = 0; j < width; j++)
        {
            int column = first + j;
            if (sweep.StaticGroups == 0)
            {
                if (column % sweep.GroupSize == 0)
                {
                    int length = Math.Min(sweep.GroupSize, columns - column);
                    float absMax = 0, min = float.PositiveInfinity, max = float.NegativeInfinity;
                    if (j + length <= width)
                    {
                        for (int t = 0; t < slots; t++)
                        {
                            int c = t * 32 + lane;
                            if (c >= j && c < j + length)
                            {
                                float value = v[t];
                                absMax = MathF.Max(absMax, MathF.Abs(value));
                                min = MathF.Min(min, value);
                                max = MathF.Max(max, value);
                            }
                        }
                    }
                    else
                    {
                        for (int c = column + lane; c < column + length; c += 32)
                        {
                            float value = w[rowStart + c];
                            absMax = MathF.Max(absMax, MathF.Abs(value));
                            min = MathF.Min(min, value);
                            max = MathF.Max(max, value);
                        }
                    }

                    for (int offset = 16; offset >= 1; offset /= 2)
                    {
                        absMax = MathF.Max(absMax, Warp.ShuffleXor(absMax, offset));
                        min = MathF.Min(min, Warp.ShuffleXor(min, offset));
                        max = MathF.Max(max, Warp.ShuffleXor(max, offset));
                    }

                    scale = QuantizeKernels.ScaleOf(absMax, min, max, spec, sweep.TensorScale, out zero);
                    if (lane == 0)
                    {
                        long parameter = (long)row * sweep.Groups + column / sweep.GroupSize;
                        scales[parameter] = scale;
                        if (asymmetric)
                        {
                            zeros[parameter] = (byte)zero;
                        }
                    }
                }
            }
            else
            {
                long parameter = (long)row * sweep.Groups + groupOfColumn[column];
                scale = scales[parameter];
                zero = asymmetric ? zeros[parameter] : 0;
            }

            int slot = j / 32;
            float x = Warp.Shuffle(v[slot], j % 32);
            int code = QuantizeKernels.EncodeValue(x, scale, zero, spec, sweep.TensorScale) & mask;
            float q = QuantizeKernels.DecodeValue(code, scale, zero, spec, sweep.TensorScale);
            long diagonal = (long)column * columns;
            float error = (x - q) / upper[diagonal + column];
            if (lane == j % 32)
            {
                codes[rowStart + column] = (byte)code;
                errors[rowStart + column] = error;
                w[rowStart + column] = q;
            }

            if (error != 0)
            {
                for (int t = slot; t < slots; t++)
                {
                    int c = t * 32 + lane;
                    if (c > j && c < width)
                    {
                        v[t] -= error * upper[diagonal + first + c];
                    }
                }
            }
        }
    }

    /// <summary>
    /// The sweep with a thread per row, for blocks wider than <see cref="SweepBlockWarp"/> holds. Columns [First, End)
    /// of one row: at a dynamic group's first column its scale (and zero point) comes from the
    /// group's current values; then q = Q(w_j), e = (w_j − q)/U_jj, w_(j+1..End) −= e·U_(j, j+1..End). The row's
    /// block stays in L1 (a warp touches 32 rows × the block); U's row is the same for every thread (broadcast).
    /// </summary>
    public static void SweepBlock(Index1D index, ArrayView<float> w, ArrayView<float> upper, ArrayView<byte> codes, ArrayView<float> errors,
        ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<int> groupOfColumn, GptqSweepSpec sweep, GpuFormatSpec spec)
    {
        int row = index;
        int columns = sweep.Columns;
        long rowStart = (long)row * columns;
        bool asymmetric = spec.Element == GpuElementKind.IntegerAsymmetric;
        int mask = (1 << spec.CodeBits) - 1;
        for (int j = sweep.First; j < sweep.End; j++)
        {
            int group;
            if (sweep.StaticGroups == 0)
            {
                group = j / sweep.GroupSize;
                if (j % sweep.GroupSize == 0)
                {
                    int length = Math.Min(sweep.GroupSize, columns - j);
                    float absMax = 0, min = 0, max = 0;
                    for (int i = 0; i < length; i++)
                    {
                        float v = w[rowStart + j + i];
                        absMax = MathF.Max(absMax, MathF.Abs(v));
                        min = i == 0 ? v : MathF.Min(min, v);
                        max = i == 0 ? v : MathF.Max(max, v);
                    }

                    float chosen = QuantizeKernels.ScaleOf(absMax, min, max, spec, sweep.TensorScale, out int chosenZero);
                    scales[(long)row * sweep.Groups + group] = chosen;
                    if (asymmetric)
                    {
                        zeros[(long)row * sweep.Groups + group] = (byte)chosenZero;
                    }
                }
            }
            else
            {
                group = groupOfColumn[j];
            }

            long parameter = (long)row * sweep.Groups + group;
            float scale = scales[parameter];
            int zero = asymmetric ? zeros[parameter] : 0;
            float x = w[rowStart + j];
            int code = QuantizeKernels.EncodeValue(x, scale, zero, spec, sweep.TensorScale) & mask;
            float q = QuantizeKernels.DecodeValue(code, scale, zero, spec, sweep.TensorScale);
            codes[rowStart + j] = (byte)code;
            w[rowStart + j] = q;
            long diagonal = (long)j * columns;
            float error = (x - q) / upper[diagonal + j];
            errors[rowStart + j] = error;
            if (error != 0)
            {
                for (int k = j + 1; k < sweep.End; k++)
                {
                    w[rowStart + k] -= error * upper[diagonal + k];
                }
            }
        }
    }

    /// <summary>
    /// C −= A·B for row-major views with strides (A m × k, B k × n, C m × n): the lazy update
    /// W[:, end:] −= E[:, block]·U[block, end:]. A group of 16×16 threads owns a 64×64 tile of C, each thread a 4×4
    /// block in registers; 64×16 slices of A and 16×64 of B are staged in shared memory.
    /// </summary>
    public static void MultiplySubtract(ArrayView<float> a, int aStride, ArrayView<float> b, int bStride, ArrayView<float> c, int cStride,
        int m, int n, int k)
    {
        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        ArrayView<float> left = SharedMemory.Allocate<float>(Step * Tile);    // A[rowBase + i, k0 + s] at s·64 + i
        ArrayView<float> right = SharedMemory.Allocate<float>(Step * Tile);   // B[k0 + s, columnBase + j] at s·64 + j
        int rowBase = Grid.IdxY * Tile, columnBase = Grid.IdxX * Tile;
        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int k0 = 0; k0 < k; k0 += Step)
        {
            for (int e = thread; e < Step * Tile; e += Threads * Threads)
            {
                // A: consecutive threads read consecutive k of a row; B: consecutive columns of a row.
                int i = e / Step, s = e % Step;
                left[s * Tile + i] = rowBase + i < m && k0 + s < k ? a[(long)(rowBase + i) * aStride + k0 + s] : 0f;
                int kk = e / Tile, j = e % Tile;
                right[e] = k0 + kk < k && columnBase + j < n ? b[(long)(k0 + kk) * bStride + columnBase + j] : 0f;
            }

            Group.Barrier();
            for (int s = 0; s < Step; s++)
            {
                float l0 = left[s * Tile + ty], l1 = left[s * Tile + ty + 16], l2 = left[s * Tile + ty + 32], l3 = left[s * Tile + ty + 48];
                float r0 = right[s * Tile + tx], r1 = right[s * Tile + tx + 16], r2 = right[s * Tile + tx + 32], r3 = right[s * Tile + tx + 48];
                a00 += l0 * r0; a01 += l0 * r1; a02 += l0 * r2; a03 += l0 * r3;
                a10 += l1 * r0; a11 += l1 * r1; a12 += l1 * r2; a13 += l1 * r3;
                a20 += l2 * r0; a21 += l2 * r1; a22 += l2 * r2; a23 += l2 * r3;
                a30 += l3 * r0; a31 += l3 * r1; a32 += l3 * r2; a33 += l3 * r3;
            }

            Group.Barrier();
        }

        SubtractRow(c, cStride, m, n, rowBase + ty, columnBase + tx, a00, a01, a02, a03);
        SubtractRow(c, cStride, m, n, rowBase + ty + 16, columnBase + tx, a10, a11, a12, a13);
        SubtractRow(c, cStride, m, n, rowBase + ty + 32, columnBase + tx, a20, a21, a22, a23);
        SubtractRow(c, cStride, m, n, rowBase + ty + 48, columnBase + tx, a30, a31, a32, a33);
    }

    /// <summary>Tile edge of <see cref="MultiplySubtractWide"/>.</summary>
    public const int WideTile = 128;

    /// <summary>Values of k staged per step by <see cref="MultiplySubtractWide"/>.</summary>
    public const int WideStep = 8;

    /// <summary>
    /// <see cref="MultiplySubtract"/> with 128×128 tiles of C (16×16 threads, 8×8 values each): the next step's
    /// 128×8 slice of A and 8×128 slice of B are fetched into registers while the current ones are multiplied (two
    /// shared buffers, one barrier per step), and each thread reads its 8 + 8 operands per k with four 16-byte
    /// shared-memory loads (rows 4·ty … 4·ty + 3 and 64 + 4·ty …, columns likewise with tx). Every value of C sums
    /// the same products in the same order as <see cref="MultiplySubtract"/> (k ascending, one accumulator, then one
    /// subtraction), so the two kernels give the same bits.
    /// </summary>
    public static void MultiplySubtractWide(ArrayView<float> a, int aStride, ArrayView<float> b, int bStride, ArrayView<float> c, int cStride,
        int m, int n, int k)
    {
        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        const int Slice = WideStep * WideTile;
        // Both slices k-major (s·128 + i): A is transposed while staged. Quads give 16-byte alignment.
        ArrayView<Float4> leftQuads = SharedMemory.Allocate<Float4>(2 * Slice / 4);
        ArrayView<Float4> rightQuads = SharedMemory.Allocate<Float4>(2 * Slice / 4);
        ArrayView<float> left = leftQuads.Cast<float>();
        ArrayView<float> right = rightQuads.Cast<float>();
        int rowBase = Grid.IdxY * WideTile, columnBase = Grid.IdxX * WideTile;

        // A: thread t fetches row t / 2, k offsets 4·(t mod 2) … + 3 (consecutive addresses). B: column t mod 128 of
        // rows t / 128, + 2, + 4, + 6 (consecutive threads on consecutive columns).
        int aRow = thread / 2, aPart = 4 * (thread % 2);
        int bColumn = thread % WideTile, bRow = thread / WideTile;
        bool aIn = rowBase + aRow < m, bIn = columnBase + bColumn < n;
        long aOffset = (long)(rowBase + aRow) * aStride, bColumnAt = columnBase + bColumn;
        float p0, p1, p2, p3, q0, q1, q2, q3;
        FetchA(a, aOffset, aIn, 0 + aPart, k, out p0, out p1, out p2, out p3);
        FetchB(b, bStride, bColumnAt, bIn, 0 + bRow, k, out q0, out q1, out q2, out q3);
        StageA(left, 0, aPart, aRow, p0, p1, p2, p3);
        StageB(right, 0, bRow, bColumn, q0, q1, q2, q3);
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
        for (int k0 = 0; k0 < k; k0 += WideStep)
        {
            bool more = k0 + WideStep < k;
            if (more)
            {
                FetchA(a, aOffset, aIn, k0 + WideStep + aPart, k, out p0, out p1, out p2, out p3);
                FetchB(b, bStride, bColumnAt, bIn, k0 + WideStep + bRow, k, out q0, out q1, out q2, out q3);
            }

            int quadBase = current * (Slice / 4);
            for (int s = 0; s < WideStep; s++)
            {
                int o = quadBase + s * (WideTile / 4);
                Float4 L0 = leftQuads[o + ty], L1 = leftQuads[o + 16 + ty];
                Float4 R0 = rightQuads[o + tx], R1 = rightQuads[o + 16 + tx];
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
                // The other buffer was last read before the previous barrier, so it can be overwritten now.
                StageA(left, (1 - current) * Slice, aPart, aRow, p0, p1, p2, p3);
                StageB(right, (1 - current) * Slice, bRow, bColumn, q0, q1, q2, q3);
            }

            Group.Barrier();
            current = 1 - current;
        }

        SubtractQuads(c, cStride, m, n, rowBase + ty * 4 + 0, columnBase + tx * 4, a00, a01, a02, a03, a04, a05, a06, a07);
        SubtractQuads(c, cStride, m, n, rowBase + ty * 4 + 1, columnBase + tx * 4, a10, a11, a12, a13, a14, a15, a16, a17);
        SubtractQuads(c, cStride, m, n, rowBase + ty * 4 + 2, columnBase + tx * 4, a20, a21, a22, a23, a24, a25, a26, a27);
        SubtractQuads(c, cStride, m, n, rowBase + ty * 4 + 3, columnBase + tx * 4, a30, a31, a32, a33, a34, a35, a36, a37);
        SubtractQuads(c, cStride, m, n, rowBase + 64 + ty * 4 + 0, columnBase + tx * 4, a40, a41, a42, a43, a44, a45, a46, a47);
        SubtractQuads(c, cStride, m, n, rowBase + 64 + ty * 4 + 1, columnBase + tx * 4, a50, a51, a52, a53, a54, a55, a56, a57);
        SubtractQuads(c, cStride, m, n, rowBase + 64 + ty * 4 + 2, columnBase + tx * 4, a60, a61, a62, a63, a64, a65, a66, a67);
        SubtractQuads(c, cStride, m, n, rowBase + 64 + ty * 4 + 3, columnBase + tx * 4, a70, a71, a72, a73, a74, a75, a76, a77);
    }

    private static void FetchA(ArrayView<float> a, long rowOffset, bool inRows, int kk, int k, out float v0, out float v1, out float v2, out float v3)
    {
        v0 = inRows && kk < k ? a[rowOffset + kk] : 0f;
        v1 = inRows && kk + 1 < k ? a[rowOffset + kk + 1] : 0f;
        v2 = inRows && kk + 2 < k ? a[rowOffset + kk + 2] : 0f;
        v3 = inRows && kk + 3 < k ? a[rowOffset + kk + 3] : 0f;
    }

    private static void FetchB(ArrayView<float> b, int stride, long column, bool inColumns, int kk, int k, out float v0, out float v1, out float v2, out float v3)
    {
        v0 = inColumns && kk < k ? b[(long)kk * stride + column] : 0f;
        v1 = inColumns && kk + 2 < k ? b[(long)(kk + 2) * stride + column] : 0f;
        v2 = inColumns && kk + 4 < k ? b[(long)(kk + 4) * stride + column] : 0f;
        v3 = inColumns && kk + 6 < k ? b[(long)(kk + 6) * stride + column] : 0f;
    }

    private static void StageA(ArrayView<float> slices, int start, int part, int row, float v0, float v1, float v2, float v3)
    {
        slices[start + part * WideTile + row] = v0;
        slices[start + (part + 1) * WideTile + row] = v1;
        slices[start + (part + 2) * WideTile + row] = v2;
        slices[start + (part + 3) * WideTile + row] = v3;
    }

    private static void StageB(ArrayView<float> slices, int start, int row, int column, float v0, float v1, float v2, float v3)
    {
        slices[start + row * WideTile + column] = v0;
        slices[start + (row + 2) * WideTile + column] = v1;
        slices[start + (row + 4) * WideTile + column] = v2;
        slices[start + (row + 6) * WideTile + column] = v3;
    }

    /// <summary>C[row, column … column + 3] and C[row, column + 64 … column + 67] −= the eight values (the layout of
    /// <see cref="MultiplySubtractWide"/>).</summary>
    private static void SubtractQuads(ArrayView<float> c, int stride, int m, int n, int row, int column,
        float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7)
    {
        if (row >= m)
        {
            return;
        }

        long offset = (long)row * stride;
        SubtractOne(c, offset, column, n, v0);
        SubtractOne(c, offset, column + 1, n, v1);
        SubtractOne(c, offset, column + 2, n, v2);
        SubtractOne(c, offset, column + 3, n, v3);
        SubtractOne(c, offset, column + 64, n, v4);
        SubtractOne(c, offset, column + 65, n, v5);
        SubtractOne(c, offset, column + 66, n, v6);
        SubtractOne(c, offset, column + 67, n, v7);
    }

    private static void SubtractOne(ArrayView<float> c, long offset, int column, int n, float value)
    {
        if (column < n)
        {
            c[offset + column] -= value;
        }
    }

    private static void SubtractRow(ArrayView<float> c, int stride, int m, int n, int row, int column, float v0, float v1, float v2, float v3)
    {
        if (row >= m)
        {
            return;
        }

        long offset = (long)row * stride;
        if (column < n)
        {
            c[offset + column] -= v0;
        }

        if (column + 16 < n)
        {
            c[offset + column + 16] -= v1;
        }

        if (column + 32 < n)
        {
            c[offset + column + 32] -= v2;
        }

        if (column + 48 < n)
        {
            c[offset + column + 48] -= v3;
        }
    }

    /// <summary>
    /// Σ over a 64×64 tile (rows of D, columns of H) of (D·H)[r, c]·D[r, c], in float64, into
    /// <paramref name="partials"/>[tile]; the host adds the tiles in order, so the sum is deterministic. D is m × n, H
    /// n × n symmetric.
    /// </summary>
    public static void QuadraticForms(ArrayView<double> d, ArrayView<double> h, ArrayView<double> partials, int m, int n)
    {
        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        ArrayView<double> left = SharedMemory.Allocate<double>(Step * Tile);
        ArrayView<double> right = SharedMemory.Allocate<double>(Step * Tile);
        ArrayView<double> sums = SharedMemory.Allocate<double>(Threads * Threads);
        int rowBase = Grid.IdxY * Tile, columnBase = Grid.IdxX * Tile;
        double a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        double a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int k0 = 0; k0 < n; k0 += Step)
        {
            for (int e = thread; e < Step * Tile; e += Threads * Threads)
            {
                int i = e / Step, s = e % Step;
                left[s * Tile + i] = rowBase + i < m && k0 + s < n ? d[(long)(rowBase + i) * n + k0 + s] : 0.0;
                int kk = e / Tile, j = e % Tile;
                right[e] = k0 + kk < n && columnBase + j < n ? h[(long)(k0 + kk) * n + columnBase + j] : 0.0;
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

        double total = WeightedRow(d, m, n, rowBase + ty, columnBase + tx, a00, a01, a02, a03) +
                       WeightedRow(d, m, n, rowBase + ty + 16, columnBase + tx, a10, a11, a12, a13) +
                       WeightedRow(d, m, n, rowBase + ty + 32, columnBase + tx, a20, a21, a22, a23) +
                       WeightedRow(d, m, n, rowBase + ty + 48, columnBase + tx, a30, a31, a32, a33);
        sums[thread] = total;
        Group.Barrier();
        for (int width = Threads * Threads / 2; width > 0; width /= 2)
        {
            if (thread < width)
            {
                sums[thread] += sums[thread + width];
            }

            Group.Barrier();
        }

        if (thread == 0)
        {
            partials[Grid.IdxY * Grid.DimX + Grid.IdxX] = sums[0];
        }
    }

    private static double WeightedRow(ArrayView<double> d, int m, int n, int row, int column, double v0, double v1, double v2, double v3)
    {
        if (row >= m)
        {
            return 0;
        }

        long offset = (long)row * n;
        double sum = 0;
        sum += column < n ? v0 * d[offset + column] : 0;
        sum += column + 16 < n ? v1 * d[offset + column + 16] : 0;
        sum += column + 32 < n ? v2 * d[offset + column + 32] : 0;
        sum += column + 48 < n ? v3 * d[offset + column + 48] : 0;
        return sum;
    }
}
