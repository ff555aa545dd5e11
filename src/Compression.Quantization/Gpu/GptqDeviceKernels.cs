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
