// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Quantization.Rotation;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>
/// Device code for the block-wise fast Walsh–Hadamard transform. No allocation, no exceptions: the host validated
/// every length. The butterflies run in the order of <c>HadamardPrimitives</c> (strides 1, 2, 4, … then one
/// multiplication by the scale) so each output is the same float32 expression as on the CPU, bit for bit. The random
/// signs of a rotation are a multiplication by ±1 before the first stage, as on the CPU: exact.
/// </summary>
internal static class HadamardKernels
{
    /// <summary>Floats one thread group transforms in shared memory: 4 KiB, blocks of up to this size in one pass.</summary>
    public const int Tile = 1024;

    /// <summary>Rows of a matrix one warp of <see cref="RegisterBlocks"/> transforms: its four 16-byte loads per
    /// thread are issued back to back, and the sign hashes of the thread's four columns serve all four rows.</summary>
    public const int RegisterRows = 4;

    /// <summary>
    /// Blocks of 2 to 4 × warp size floats held in registers. Warp w takes the quads (four consecutive floats, one
    /// 16-byte load) <c>chunk · warpSize + lane</c> of rows <c>rowGroup · 4 … + 3</c>, where the warp's number splits
    /// into rowGroup and chunk (<paramref name="chunksPerRow"/> chunks of a warp's width per row): each load
    /// instruction of the warp reads warpSize × 16 consecutive bytes. A block is <paramref name="lanes"/> consecutive
    /// lanes × 4 floats; strides 1 and 2 run inside the thread and strides 4, 8, … between lanes through
    /// <see cref="Warp.ShuffleXor{T}(T, int)"/>. No shared memory, no barrier, one pass over memory for the signs,
    /// the transform and the scale.
    /// </summary>
    /// <remarks>
    /// Every lane runs every shuffle, also lanes past the row's end or the last row (their loads and stores are
    /// skipped): a shuffle needs its partner lane active. Those lanes never feed a valid lane, because blocks are
    /// aligned to the row and a block's lanes are all in or all out.
    /// </remarks>
    /// <param name="data">The matrix as quads: rows × <paramref name="quadsPerRow"/>.</param>
    /// <param name="rows">Row count.</param>
    /// <param name="quadsPerRow">Columns / 4.</param>
    /// <param name="chunksPerRow">⌈quadsPerRow / warp size⌉.</param>
    /// <param name="lanes">Lanes per block: block / 4 (1 for blocks of 2 and 4).</param>
    /// <param name="pairsOnly">1 for blocks of 2 (stride 1 only inside the quad), else 0.</param>
    /// <param name="scale">The float32 1/√block.</param>
    /// <param name="seed">Sign seed (ignored unless <paramref name="signed"/> is 1).</param>
    /// <param name="signed">1 to multiply column j by the rotation's ±1 before the transform.</param>
    public static void RegisterBlocks(ArrayView<Float4> data, int rows, int quadsPerRow, int chunksPerRow, int lanes, int pairsOnly,
        float scale, long seed, int signed)
    {
        int warpsPerGroup = Group.DimX / Warp.WarpSize;
        // The host keeps the warp count below 2³¹: a 32-bit division, once per thread.
        int warp = Grid.IdxX * warpsPerGroup + Warp.WarpIdx;
        int lane = Warp.LaneIdx;
        int rowGroup = warp / chunksPerRow;
        int quad = (warp - rowGroup * chunksPerRow) * Warp.WarpSize + lane;
        long row = (long)rowGroup * RegisterRows;
        bool column = quad < quadsPerRow;

        float s0 = 1f, s1 = 1f, s2 = 1f, s3 = 1f;
        if (signed != 0 && column)
        {
            int first = 4 * quad;
            s0 = HadamardSigns.IsNegative(seed, first) ? -1f : 1f;
            s1 = HadamardSigns.IsNegative(seed, first + 1) ? -1f : 1f;
            s2 = HadamardSigns.IsNegative(seed, first + 2) ? -1f : 1f;
            s3 = HadamardSigns.IsNegative(seed, first + 3) ? -1f : 1f;
        }

        bool in0 = column && row < rows, in1 = column && row + 1 < rows, in2 = column && row + 2 < rows, in3 = column && row + 3 < rows;
        long at = row * quadsPerRow + quad;
        // All four loads before any arithmetic: 64 bytes per thread in flight.
        Float4 a = default, b = default, c = default, d = default;
        if (in0)
        {
            a = data[at];
        }

        if (in1)
        {
            b = data[at + quadsPerRow];
        }

        if (in2)
        {
            c = data[at + 2L * quadsPerRow];
        }

        if (in3)
        {
            d = data[at + 3L * quadsPerRow];
        }

        bool two = pairsOnly == 0;
        a = InThread(a, s0, s1, s2, s3, two);
        b = InThread(b, s0, s1, s2, s3, two);
        c = InThread(c, s0, s1, s2, s3, two);
        d = InThread(d, s0, s1, s2, s3, two);
        // One loop for the four rows: sixteen independent shuffles per stride, so their latencies overlap.
        for (int m = 1; m < lanes; m *= 2)
        {
            float own = (lane & m) != 0 ? -1f : 1f;
            a = Pair(a, m, own);
            b = Pair(b, m, own);
            c = Pair(c, m, own);
            d = Pair(d, m, own);
        }

        a = Scale(a, scale);
        b = Scale(b, scale);
        c = Scale(c, scale);
        d = Scale(d, scale);
        if (in0)
        {
            data[at] = a;
        }

        if (in1)
        {
            data[at + quadsPerRow] = b;
        }

        if (in2)
        {
            data[at + 2L * quadsPerRow] = c;
        }

        if (in3)
        {
            data[at + 3L * quadsPerRow] = d;
        }
    }

    /// <summary>A quad's signs and its strides 1 and 2 (stride 1 only when <paramref name="two"/> is false).</summary>
    private static Float4 InThread(Float4 v, float s0, float s1, float s2, float s3, bool two)
    {
        // ±1 products are exact, so a contraction of a product and the following sum into an FMA rounds the same.
        float x0 = v.X * s0, x1 = v.Y * s1, x2 = v.Z * s2, x3 = v.W * s3;
        float y0 = x0 + x1, y1 = x0 - x1, y2 = x2 + x3, y3 = x2 - x3;
        return two
            ? new Float4 { X = y0 + y2, Y = y1 + y3, Z = y0 - y2, W = y1 - y3 }
            : new Float4 { X = y0, Y = y1, Z = y2, W = y3 };
    }

    /// <summary>One stride 4 · <paramref name="mask"/> butterfly of a quad with lane ^ <paramref name="mask"/>'s quad.</summary>
    private static Float4 Pair(Float4 v, int mask, float sign) =>
        new Float4 { X = Pair(v.X, mask, sign), Y = Pair(v.Y, mask, sign), Z = Pair(v.Z, mask, sign), W = Pair(v.W, mask, sign) };

    /// <summary>
    /// One butterfly between this lane and lane ^ <paramref name="mask"/>: the lower lane holds a and keeps
    /// a + b = 1·a + partner, the upper holds b and keeps a − b = (−1)·b + partner. These are the CPU's two
    /// expressions bit for bit: IEEE subtraction is the addition of the negated operand, addition commutes, and the
    /// product by ±1 is exact, so it makes no difference whether the compiler fuses it with the sum (one FMA).
    /// </summary>
    private static float Pair(float value, int mask, float sign)
    {
        float partner = Warp.ShuffleXor(value, mask);
        return value * sign + partner;
    }

    private static Float4 Scale(Float4 v, float scale) =>
        new Float4 { X = v.X * scale, Y = v.Y * scale, Z = v.Z * scale, W = v.W * scale };

    /// <summary>
    /// One group per tile of <see cref="Tile"/> consecutive floats: load into shared memory (times the column's ±1
    /// sign when <paramref name="signed"/> is 1), stages h = 1 … <paramref name="innerBlock"/>/2 with a barrier
    /// between stages, multiply by <paramref name="scale"/>, store. Tiles are aligned to blocks (the block size
    /// divides <see cref="Tile"/>, or <see cref="Tile"/> divides it), so a butterfly never leaves its tile; a partial
    /// last tile holds whole blocks and its padding is never stored.
    /// </summary>
    public static void SharedStages(ArrayView<float> data, int innerBlock, float scale, int columns, long seed, int signed)
    {
        ArrayView<float> tile = SharedMemory.Allocate<float>(Tile);
        long start = (long)Grid.IdxX * Tile;
        long left = data.Length - start;
        int valid = left < Tile ? (int)left : Tile;
        int thread = Group.IdxX, threads = Group.DimX;
        int firstColumn = signed != 0 ? (int)(start % columns) : 0;
        for (int k = thread; k < Tile; k += threads)
        {
            float value = k < valid ? data[start + k] : 0f;
            if (signed != 0)
            {
                // A tile spans at most Tile / columns + 1 rows: a few subtractions instead of a division per element.
                int j = firstColumn + k;
                while (j >= columns)
                {
                    j -= columns;
                }

                value *= HadamardSigns.IsNegative(seed, j) ? -1f : 1f;
            }

            tile[k] = value;
        }

        Group.Barrier();
        for (int h = 1; h < innerBlock; h *= 2)
        {
            for (int p = thread; p < Tile / 2; p += threads)
            {
                // Pair p of the stage: position p with bit log2(h) shifted in as zero, and its partner h above.
                int i = ((p & ~(h - 1)) << 1) | (p & (h - 1));
                float a = tile[i], b = tile[i + h];
                tile[i] = a + b;
                tile[i + h] = a - b;
            }

            Group.Barrier();
        }

        for (int k = thread; k < valid; k += threads)
        {
            data[start + k] = tile[k] * scale;
        }
    }

    /// <summary>One stage of stride <paramref name="h"/> ≥ <see cref="Tile"/> straight in global memory, one thread
    /// per butterfly (blocks larger than a tile), times <paramref name="scale"/> (1 except on the last stage: exact).</summary>
    public static void GlobalStage(Index1D pair, ArrayView<float> data, int h, float scale)
    {
        long p = pair;
        long i = ((p & ~(long)(h - 1)) << 1) | (p & (h - 1));
        float a = data[i], b = data[i + h];
        data[i] = (a + b) * scale;
        data[i + h] = (a - b) * scale;
    }

    /// <summary>Two stages, strides <paramref name="h"/> and 2<paramref name="h"/> (h ≥ <see cref="Tile"/>), in one
    /// pass over global memory: one thread per four elements i, i + h, i + 2h, i + 3h, which those two stages combine
    /// only among themselves, in the CPU's order (stride h first). Times <paramref name="scale"/> at the end (1 unless
    /// 2h is the last stride).</summary>
    public static void GlobalStagePair(Index1D quadruple, ArrayView<float> data, int h, float scale)
    {
        long p = quadruple;
        long i = ((p & ~(long)(h - 1)) << 2) | (p & (h - 1));
        float e0 = data[i], e1 = data[i + h], e2 = data[i + 2L * h], e3 = data[i + 3L * h];
        float f0 = e0 + e1, f1 = e0 - e1, f2 = e2 + e3, f3 = e2 - e3;
        data[i] = (f0 + f2) * scale;
        data[i + h] = (f1 + f3) * scale;
        data[i + 2L * h] = (f0 - f2) * scale;
        data[i + 3L * h] = (f1 - f3) * scale;
    }
}
