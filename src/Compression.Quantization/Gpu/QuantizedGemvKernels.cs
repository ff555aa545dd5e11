// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>
/// Device code of the fused dequantize × matrix-vector product <c>Y = X·Ŵᵀ</c> of <see cref="GpuQuantizedMatrixMultiply"/>.
/// A group of <see cref="WarpsPerGroup"/> warps owns <see cref="RowsPerWarp"/> rows and one tile of up to
/// <see cref="BatchTile"/> batch rows; each warp walks every fourth tile (32 lanes × 16 bytes of codes) of those rows. Lane l's 16 bytes hold quads (4 consecutive columns) l, l + 32,
/// l + 64, … of the tile, so every X load of the warp is one contiguous 512-byte read (16 bytes per lane) and every
/// code load is too; each X quad is reused by the four rows. Codes decode by bit tricks into exact float32 values (no
/// conversions, no tables), partial sums of a quad take the quad's scale, and the lanes' sums meet by shuffles.
/// </summary>
/// <remarks>
/// Exact decoding: an integer code c sits in the mantissa of 2^23 (<c>0x4B000000 | c·16^j</c> is 2^23 + c·16^j), so one
/// multiply-subtract by exact constants gives c − offset exactly. FP4 E2M1 and FP8 E4M3 codes are moved to the bottom of
/// the float32 exponent (sign to bit 31, the rest of the word masked off): the float is then the element times 2^-126
/// (E2M1) or 2^-120 (E4M3), subnormal elements landing on float32 subnormals, and a multiply by a power of two
/// restores the element exactly (FP4: half the element, with twice the scale, to spare MX's E8M0 code 0 a select). The host validated every shape and padded the rows to whole tiles with codes of value 0.
/// </remarks>
internal static class QuantizedGemvKernels
{
    /// <summary>Rows each group computes (X is reused across them).</summary>
    public const int RowsPerWarp = 4;

    /// <summary>Warps per thread group; they split the tiles of the group's rows.</summary>
    public const int WarpsPerGroup = 4;

    /// <summary>Batch rows one warp computes; larger batches run several tiles side by side.</summary>
    public const int BatchTile = 4;

    /// <summary>Bytes of codes one lane reads per tile (one 16-byte load per row).</summary>
    public const int ChunkBytes = 16;

    private const float TwoTo125 = 4.253529586511731e37f;
    private const float TwoTo120 = 1.329227995784916e36f;
    private const float TwoTo121 = 2.658455991569832e36f;

    /// <summary>
    /// Y[b, r] = Σ_k X[b, k]·Ŵ[r, k] for the rows of this warp and the batch rows of this group's tile. Group g covers
    /// row block g / batchTiles and batch tile g % batchTiles, so the groups that read the same rows run together and
    /// share the codes through L2.
    /// </summary>
    public static void Multiply<TCodes, TScales, TBatch>(ArrayView<CodeChunk> codes, ArrayView<Float4> floatScales, ArrayView<ulong> byteScales,
        ArrayView<float> rowScales, ArrayView<Float4> x, ArrayView<float> y, GemvSpec spec)
        where TCodes : struct, ICodeDecoder
        where TScales : struct, IQuadScales
        where TBatch : struct, IBatchWidth
    {
        int lane = Warp.LaneIdx;
        int rowBlock = Grid.IdxX / spec.BatchTiles;
        int b0 = (Grid.IdxX - rowBlock * spec.BatchTiles) * BatchTile;
        // The group's warps share its four rows and split their tiles (warp w takes tiles w, w + 4, …): four times
        // the warps, hence the bytes in flight, of a warp per row block, which left an 8192-row layer at a quarter of
        // the copy bandwidth on an H200.
        int warp = Warp.WarpIdx;
        int firstRow = rowBlock * RowsPerWarp;
        int last = spec.Rows - 1;
        // Rows past the end repeat the last row (reads stay inside the buffers) and are never stored.
        int r0 = Math.Min(firstRow, last), r1 = Math.Min(firstRow + 1, last), r2 = Math.Min(firstRow + 2, last), r3 = Math.Min(firstRow + 3, last);
        int width = default(TBatch).Width;
        int lastBatch = spec.Batch - 1;
        long x0 = (long)Math.Min(b0, lastBatch) * spec.QuadsPerXRow;
        long x1 = (long)Math.Min(b0 + 1, lastBatch) * spec.QuadsPerXRow;
        long x2 = (long)Math.Min(b0 + 2, lastBatch) * spec.QuadsPerXRow;
        long x3 = (long)Math.Min(b0 + 3, lastBatch) * spec.QuadsPerXRow;
        int quads = default(TCodes).QuadsPerChunk;
        int tiles = spec.Tiles;
        int scaleClass = lane >> spec.ClassShift;

        Sums acc = default;
        int start = Math.Min(warp, tiles - 1);
        Rows4 current = LoadCodes(codes, r0, r1, r2, r3, start, tiles, lane);
        Scales4 currentScales = LoadScales<TScales>(floatScales, byteScales, r0, r1, r2, r3, start, spec, scaleClass, quads);
        for (int t = warp; t < tiles; t += WarpsPerGroup)
        {
            // The next tile's loads go out before this tile's arithmetic: a warp keeps two tiles of codes in flight.
            int next = Math.Min(t + WarpsPerGroup, tiles - 1);
            Rows4 nextCodes = LoadCodes(codes, r0, r1, r2, r3, next, tiles, lane);
            Scales4 nextScales = LoadScales<TScales>(floatScales, byteScales, r0, r1, r2, r3, next, spec, scaleClass, quads);
            int quad0 = t * 32 * quads + lane;
            acc = Quad<TCodes, TScales>(acc, current, currentScales, x, x0, x1, x2, x3, quad0, 0, width, spec);
            acc = Quad<TCodes, TScales>(acc, current, currentScales, x, x0, x1, x2, x3, quad0, 1, width, spec);
            acc = Quad<TCodes, TScales>(acc, current, currentScales, x, x0, x1, x2, x3, quad0, 2, width, spec);
            acc = Quad<TCodes, TScales>(acc, current, currentScales, x, x0, x1, x2, x3, quad0, 3, width, spec);
            if (quads > 4)
            {
                acc = Quad<TCodes, TScales>(acc, current, currentScales, x, x0, x1, x2, x3, quad0, 4, width, spec);
                acc = Quad<TCodes, TScales>(acc, current, currentScales, x, x0, x1, x2, x3, quad0, 5, width, spec);
                acc = Quad<TCodes, TScales>(acc, current, currentScales, x, x0, x1, x2, x3, quad0, 6, width, spec);
                acc = Quad<TCodes, TScales>(acc, current, currentScales, x, x0, x1, x2, x3, quad0, 7, width, spec);
            }

            current = nextCodes;
            currentScales = nextScales;
        }

        acc = WarpSum(acc, width);
        // The warps' partial sums meet in shared memory and are added in warp order (deterministic).
        ArrayView<float> partials = SharedMemory.Allocate<float>(WarpsPerGroup * 16);
        if (lane == 0)
        {
            Put(partials, warp * 16, acc.R0);
            Put(partials, warp * 16 + 4, acc.R1);
            Put(partials, warp * 16 + 8, acc.R2);
            Put(partials, warp * 16 + 12, acc.R3);
        }

        Group.Barrier();
        if (warp == 0 && lane == 0)
        {
            for (int w = 1; w < WarpsPerGroup; w++)
            {
                acc.R0 = Add(acc.R0, partials, w * 16);
                acc.R1 = Add(acc.R1, partials, w * 16 + 4);
                acc.R2 = Add(acc.R2, partials, w * 16 + 8);
                acc.R3 = Add(acc.R3, partials, w * 16 + 12);
            }

            Store<TScales>(y, rowScales, acc.R0, firstRow, r0, b0, width, spec);
            Store<TScales>(y, rowScales, acc.R1, firstRow + 1, r1, b0, width, spec);
            Store<TScales>(y, rowScales, acc.R2, firstRow + 2, r2, b0, width, spec);
            Store<TScales>(y, rowScales, acc.R3, firstRow + 3, r3, b0, width, spec);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(ArrayView<float> partials, int at, Batch4Sums sums)
    {
        partials[at] = sums.B0;
        partials[at + 1] = sums.B1;
        partials[at + 2] = sums.B2;
        partials[at + 3] = sums.B3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Batch4Sums Add(Batch4Sums sums, ArrayView<float> partials, int at) => new()
    {
        B0 = sums.B0 + partials[at],
        B1 = sums.B1 + partials[at + 1],
        B2 = sums.B2 + partials[at + 2],
        B3 = sums.B3 + partials[at + 3],
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Rows4 LoadCodes(ArrayView<CodeChunk> codes, int r0, int r1, int r2, int r3, int tile, int tiles, int lane) => new()
    {
        R0 = codes[((long)r0 * tiles + tile) * 32 + lane],
        R1 = codes[((long)r1 * tiles + tile) * 32 + lane],
        R2 = codes[((long)r2 * tiles + tile) * 32 + lane],
        R3 = codes[((long)r3 * tiles + tile) * 32 + lane],
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Scales4 LoadScales<TScales>(ArrayView<Float4> floatScales, ArrayView<ulong> byteScales, int r0, int r1, int r2, int r3, int tile,
        GemvSpec spec, int scaleClass, int quads)
        where TScales : struct, IQuadScales
    {
        TScales scales = default;
        return new Scales4
        {
            R0 = scales.Load(floatScales, byteScales, ((long)r0 * spec.Tiles + tile) * spec.Classes + scaleClass, quads),
            R1 = scales.Load(floatScales, byteScales, ((long)r1 * spec.Tiles + tile) * spec.Classes + scaleClass, quads),
            R2 = scales.Load(floatScales, byteScales, ((long)r2 * spec.Tiles + tile) * spec.Classes + scaleClass, quads),
            R3 = scales.Load(floatScales, byteScales, ((long)r3 * spec.Tiles + tile) * spec.Classes + scaleClass, quads),
        };
    }

    /// <summary>Quad <paramref name="i"/> of the lane's chunk (columns 4·(quad0 + 32·i) …): X of the batch tile once, then four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Sums Quad<TCodes, TScales>(Sums acc, Rows4 chunk, Scales4 scales, ArrayView<Float4> x, long x0, long x1, long x2, long x3,
        int quad0, int i, int width, GemvSpec spec)
        where TCodes : struct, ICodeDecoder
        where TScales : struct, IQuadScales
    {
        // Quads past the row (the padding of the last tile) hold codes of value 0 and read the last X quad again:
        // no branch, so every load of the tile can be issued early.
        int quad = Math.Min(quad0 + 32 * i, spec.QuadsPerXRow - 1);

        Batch4 xs = default;
        xs.B0 = x[x0 + quad];
        if (width > 1)
        {
            xs.B1 = x[x1 + quad];
        }

        if (width > 2)
        {
            xs.B2 = x[x2 + quad];
            xs.B3 = x[x3 + quad];
        }

        TCodes decoder = default;
        TScales scale = default;
        float offset = decoder.Offset;
        acc.R0 = Row(acc.R0, decoder.Decode(chunk.R0, i, scale.Zero(scales.R0, i, offset)), xs, scale.Scale(scales.R0, i), scale.PerQuad, width);
        acc.R1 = Row(acc.R1, decoder.Decode(chunk.R1, i, scale.Zero(scales.R1, i, offset)), xs, scale.Scale(scales.R1, i), scale.PerQuad, width);
        acc.R2 = Row(acc.R2, decoder.Decode(chunk.R2, i, scale.Zero(scales.R2, i, offset)), xs, scale.Scale(scales.R2, i), scale.PerQuad, width);
        acc.R3 = Row(acc.R3, decoder.Decode(chunk.R3, i, scale.Zero(scales.R3, i, offset)), xs, scale.Scale(scales.R3, i), scale.PerQuad, width);
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Batch4Sums Row(Batch4Sums acc, Float4 w, Batch4 xs, float scale, bool perQuad, int width)
    {
        acc.B0 = Dot(acc.B0, w, xs.B0, scale, perQuad);
        if (width > 1)
        {
            acc.B1 = Dot(acc.B1, w, xs.B1, scale, perQuad);
        }

        if (width > 2)
        {
            acc.B2 = Dot(acc.B2, w, xs.B2, scale, perQuad);
            acc.B3 = Dot(acc.B3, w, xs.B3, scale, perQuad);
        }

        return acc;
    }

    /// <summary>acc + scale·(w·x) for per-quad scales; acc + w·x when the scale is the row's (applied once at the end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float acc, Float4 w, Float4 x, float scale, bool perQuad)
    {
        if (perQuad)
        {
            float partial = w.X * x.X + w.Y * x.Y + w.Z * x.Z + w.W * x.W;
            return acc + partial * scale;
        }

        return acc + w.X * x.X + w.Y * x.Y + w.Z * x.Z + w.W * x.W;
    }

    private static Sums WarpSum(Sums acc, int width)
    {
        acc.R0 = WarpSum(acc.R0, width);
        acc.R1 = WarpSum(acc.R1, width);
        acc.R2 = WarpSum(acc.R2, width);
        acc.R3 = WarpSum(acc.R3, width);
        return acc;
    }

    private static Batch4Sums WarpSum(Batch4Sums acc, int width)
    {
        for (int mask = 16; mask >= 1; mask >>= 1)
        {
            acc.B0 += Warp.ShuffleXor(acc.B0, mask);
            if (width > 1)
            {
                acc.B1 += Warp.ShuffleXor(acc.B1, mask);
            }

            if (width > 2)
            {
                acc.B2 += Warp.ShuffleXor(acc.B2, mask);
                acc.B3 += Warp.ShuffleXor(acc.B3, mask);
            }
        }

        return acc;
    }

    private static void Store<TScales>(ArrayView<float> y, ArrayView<float> rowScales, Batch4Sums acc, int row, int clampedRow, int b0, int width, GemvSpec spec)
        where TScales : struct, IQuadScales
    {
        if (row >= spec.Rows)
        {
            return;
        }

        float scale = default(TScales).PerQuad ? spec.OutputScale : rowScales[clampedRow];
        StoreOne(y, acc.B0 * scale, row, b0, spec);
        if (width > 1)
        {
            StoreOne(y, acc.B1 * scale, row, b0 + 1, spec);
        }

        if (width > 2)
        {
            StoreOne(y, acc.B2 * scale, row, b0 + 2, spec);
            StoreOne(y, acc.B3 * scale, row, b0 + 3, spec);
        }
    }

    private static void StoreOne(ArrayView<float> y, float value, int row, int b, GemvSpec spec)
    {
        if (b < spec.Batch)
        {
            y[(long)b * spec.Rows + row] = value;
        }
    }

    /// <summary>Word <paramref name="i"/> (0–3) of a chunk; <paramref name="i"/> is a constant after inlining.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Word(CodeChunk chunk, int i) => (int)(i == 0 ? chunk.X : i == 1 ? chunk.Y : i == 2 ? chunk.Z : chunk.W);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Bits(int bits) => BitConverter.Int32BitsToSingle(bits);

    /// <summary>INT4 (symmetric offset 8, or a zero point): quad i is the (i &amp; 1) half of word i / 2, one nibble per column.</summary>
    internal readonly struct Int4Codes : ICodeDecoder
    {
        public int QuadsPerChunk => 8;

        public float Offset => 8f;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Float4 Decode(CodeChunk chunk, int quad, float zero)
        {
            int word = Word(chunk, quad >> 1);
            int v = (quad & 1) == 0 ? word : (int)((uint)word >> 16);
            // 2^23 + c·16^j, scaled by 16^-j (exact) minus 2^(23-4j) + zero (exact): c − zero. A constant zero (the
            // symmetric offset) folds the subtrahends into constants.
            return new Float4
            {
                X = Bits((v & 0xF) | 0x4B00_0000) - (8388608f + zero),
                Y = Bits((v & 0xF0) | 0x4B00_0000) * 0.0625f - (524288f + zero),
                Z = Bits((v & 0xF00) | 0x4B00_0000) * 0.00390625f - (32768f + zero),
                W = Bits((v & 0xF000) | 0x4B00_0000) * 0.000244140625f - (2048f + zero),
            };
        }
    }

    /// <summary>INT8 (symmetric offset 128, or a zero point): quad i is word i, one byte per column.</summary>
    internal readonly struct Int8Codes : ICodeDecoder
    {
        public int QuadsPerChunk => 4;

        public float Offset => 128f;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Float4 Decode(CodeChunk chunk, int quad, float zero)
        {
            int word = Word(chunk, quad);
            int high = (int)((uint)word >> 16);
            return new Float4
            {
                X = Bits((word & 0xFF) | 0x4B00_0000) - (8388608f + zero),
                Y = Bits((word & 0xFF00) | 0x4B00_0000) * 0.00390625f - (32768f + zero),
                Z = Bits((high & 0xFF) | 0x4B00_0000) - (8388608f + zero),
                W = Bits((high & 0xFF00) | 0x4B00_0000) * 0.00390625f - (32768f + zero),
            };
        }
    }

    /// <summary>FP4 E2M1 (MXFP4, NVFP4 elements): quad i is the (i &amp; 1) half of word i / 2.</summary>
    internal readonly struct Fp4Codes : ICodeDecoder
    {
        public int QuadsPerChunk => 8;

        public float Offset => 0f;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Float4 Decode(CodeChunk chunk, int quad, float zero)
        {
            int word = Word(chunk, quad >> 1);
            int n = 4 * (quad & 1);
            return new Float4 { X = E2M1(word, n), Y = E2M1(word, n + 1), Z = E2M1(word, n + 2), W = E2M1(word, n + 3) };
        }

        /// <summary>Nibble n: its sign to bit 31 (shift left), then an arithmetic shift puts exponent and mantissa at
        /// bits 24–22; the mask keeps sign, exponent and mantissa: the element × 2^-126. One multiply by 2^125 gives
        /// half the element, exactly; the FP4 scale readers return twice the scale, so the products are unchanged.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float E2M1(int word, int n) => Bits(((word << (28 - 4 * n)) >> 6) & unchecked((int)0x81C0_0000)) * TwoTo125;
    }

    /// <summary>FP8 E4M3: quad i is word i, one byte per column (finite codes only).</summary>
    internal readonly struct Fp8Codes : ICodeDecoder
    {
        public int QuadsPerChunk => 4;

        public float Offset => 0f;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Float4 Decode(CodeChunk chunk, int quad, float zero)
        {
            int word = Word(chunk, quad);
            return new Float4 { X = E4M3(word, 0), Y = E4M3(word, 1), Z = E4M3(word, 2), W = E4M3(word, 3) };
        }

        /// <summary>Byte n: sign to bit 31, exponent and mantissa to bits 26–20; the element × 2^-120.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static float E4M3(int word, int n) => E4M3Bits(word, n) * TwoTo120;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static float E4M3Bits(int word, int n) => Bits(((word << (24 - 8 * n)) >> 4) & unchecked((int)0x87F0_0000));
    }

    /// <summary>One scale per row, applied to the finished sum (per-channel, per-tensor).</summary>
    internal readonly struct RowScale : IQuadScales
    {
        public bool PerQuad => false;

        public ScaleBlock Load(ArrayView<Float4> floatScales, ArrayView<ulong> byteScales, long index, int quads) => default;

        public float Scale(ScaleBlock block, int quad) => 1f;

        public float Zero(ScaleBlock block, int quad, float offset) => offset;
    }

    /// <summary>float32 scales, one per quad of the lane's chunk (per-group integer formats).</summary>
    internal readonly struct FloatQuadScales : IQuadScales
    {
        public bool PerQuad => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ScaleBlock Load(ArrayView<Float4> floatScales, ArrayView<ulong> byteScales, long index, int quads) => quads > 4
            ? new ScaleBlock { A = floatScales[2 * index], B = floatScales[2 * index + 1] }
            : new ScaleBlock { A = floatScales[index] };

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Scale(ScaleBlock block, int quad)
        {
            Float4 half = quad < 4 ? block.A : block.B;
            int k = quad & 3;
            return k == 0 ? half.X : k == 1 ? half.Y : k == 2 ? half.Z : half.W;
        }

        public float Zero(ScaleBlock block, int quad, float offset) => offset;
    }

    /// <summary>float32 scales and zero-point bytes, one each per quad (asymmetric integer formats).</summary>
    internal readonly struct FloatQuadScalesWithZeros : IQuadScales
    {
        public bool PerQuad => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ScaleBlock Load(ArrayView<Float4> floatScales, ArrayView<ulong> byteScales, long index, int quads)
        {
            ScaleBlock block = default(FloatQuadScales).Load(floatScales, byteScales, index, quads);
            block.Zeros = byteScales[index];
            return block;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Scale(ScaleBlock block, int quad) => default(FloatQuadScales).Scale(block, quad);

        /// <summary>The zero byte of the quad as an exact float (2^23 + z − 2^23).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Zero(ScaleBlock block, int quad, float offset)
        {
            int word = (int)(uint)(quad < 4 ? block.Zeros : block.Zeros >> 32);
            return Bits(((int)((uint)word >> (8 * (quad & 3))) & 0xFF) | 0x4B00_0000) - 8388608f;
        }
    }

    /// <summary>MX scales as E8M0 exponent + 1, one byte per quad (eight quads: one 8-byte load): twice the scale.</summary>
    internal readonly struct E8M0QuadScales : IQuadScales
    {
        public bool PerQuad => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ScaleBlock Load(ArrayView<Float4> floatScales, ArrayView<ulong> byteScales, long index, int quads) => ScaleBlock.FromBytes(byteScales[index]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Scale(ScaleBlock block, int quad)
        {
            int word = block.ByteWord(quad);
            int k = quad & 3;
            // The byte (E8M0 code + 1, at least 1) into the float32 exponent field: 2^(e + 1 − 127), always normal.
            return Bits((k == 3 ? (int)((uint)word >> 1) : word << (23 - 8 * k)) & 0x7F80_0000);
        }

        public float Zero(ScaleBlock block, int quad, float offset) => offset;
    }

    /// <summary>NVFP4 E4M3 block scales, one byte per quad, as twice the scale; the tensor scale multiplies the finished sum.</summary>
    internal readonly struct E4M3QuadScales : IQuadScales
    {
        public bool PerQuad => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ScaleBlock Load(ArrayView<Float4> floatScales, ArrayView<ulong> byteScales, long index, int quads) => ScaleBlock.FromBytes(byteScales[index]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Scale(ScaleBlock block, int quad) => Fp8Codes.E4M3Bits(block.ByteWord(quad), quad & 3) * TwoTo121;

        public float Zero(ScaleBlock block, int quad, float offset) => offset;
    }

    internal readonly struct Width1 : IBatchWidth
    {
        public int Width => 1;
    }

    internal readonly struct Width2 : IBatchWidth
    {
        public int Width => 2;
    }

    internal readonly struct Width4 : IBatchWidth
    {
        public int Width => 4;
    }
}

/// <summary>16 bytes of codes: one lane's share of one row of a tile (one 16-byte load).</summary>
internal struct CodeChunk
{
    public uint X;
    public uint Y;
    public uint Z;
    public uint W;
}

/// <summary>Decodes quad i (four columns) of a lane's chunk into exact, unscaled float32 weights.</summary>
internal interface ICodeDecoder
{
    int QuadsPerChunk { get; }

    /// <summary>The zero point of symmetric codes (0 for FP codes).</summary>
    float Offset { get; }

    /// <summary>Quad <paramref name="quad"/>'s weights minus <paramref name="zero"/> (integer codes; FP codes ignore it).</summary>
    Float4 Decode(CodeChunk chunk, int quad, float zero);
}

/// <summary>Where a lane finds the scale of each of its quads.</summary>
internal interface IQuadScales
{
    /// <summary>Whether scales vary along the row (multiplying each quad's partial sum) or are the row's.</summary>
    bool PerQuad { get; }

    ScaleBlock Load(ArrayView<Float4> floatScales, ArrayView<ulong> byteScales, long index, int quads);

    float Scale(ScaleBlock block, int quad);

    /// <summary>The zero point of the quad's integer codes: <paramref name="offset"/> unless the format stores zero points.</summary>
    float Zero(ScaleBlock block, int quad, float offset);
}

/// <summary>The batch rows one warp computes (1, 2 or 4): a constant of each compiled kernel.</summary>
internal interface IBatchWidth
{
    int Width { get; }
}

/// <summary>The scales of one lane's quads in one tile row: eight floats, or eight bytes in the first two words.</summary>
internal struct ScaleBlock
{
    public Float4 A;
    public Float4 B;

    /// <summary>Zero-point bytes of the quads (asymmetric integer formats).</summary>
    public ulong Zeros;

    public static ScaleBlock FromBytes(ulong bytes) => new()
    {
        A = new Float4 { X = BitConverter.Int32BitsToSingle((int)(uint)bytes), Y = BitConverter.Int32BitsToSingle((int)(uint)(bytes >> 32)) },
    };

    /// <summary>The 32-bit word holding byte <paramref name="quad"/>.</summary>
    public int ByteWord(int quad) => BitConverter.SingleToInt32Bits(quad < 4 ? A.X : A.Y);
}

/// <summary>Four X quads, one per batch row of the tile.</summary>
internal struct Batch4
{
    public Float4 B0;
    public Float4 B1;
    public Float4 B2;
    public Float4 B3;
}

/// <summary>One row's partial sums for the batch rows of the tile.</summary>
internal struct Batch4Sums
{
    public float B0;
    public float B1;
    public float B2;
    public float B3;
}

/// <summary>The partial sums of a warp's four rows.</summary>
internal struct Sums
{
    public Batch4Sums R0;
    public Batch4Sums R1;
    public Batch4Sums R2;
    public Batch4Sums R3;
}

/// <summary>One chunk per row of the warp.</summary>
internal struct Rows4
{
    public CodeChunk R0;
    public CodeChunk R1;
    public CodeChunk R2;
    public CodeChunk R3;
}

/// <summary>One scale block per row of the warp.</summary>
internal struct Scales4
{
    public ScaleBlock R0;
    public ScaleBlock R1;
    public ScaleBlock R2;
    public ScaleBlock R3;
}

/// <summary>Shape constants of one multiply, as plain numbers.</summary>
internal struct GemvSpec
{
    /// <summary>Output rows N.</summary>
    public int Rows;

    /// <summary>Float4 quads per X row (columns / 4).</summary>
    public int QuadsPerXRow;

    /// <summary>Tiles per row (32 lanes × 16 bytes each).</summary>
    public int Tiles;

    /// <summary>Scale blocks per row and tile (lanes with different groups); 1 for row scales.</summary>
    public int Classes;

    /// <summary>log2 of the lanes per scale class.</summary>
    public int ClassShift;

    /// <summary>Rows of X and Y.</summary>
    public int Batch;

    /// <summary>Batch tiles (groups per row block).</summary>
    public int BatchTiles;

    /// <summary>Multiplies every output of per-quad-scaled formats (NVFP4's tensor scale; 1 otherwise).</summary>
    public float OutputScale;
}
