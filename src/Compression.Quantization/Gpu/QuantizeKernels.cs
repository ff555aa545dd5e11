// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>
/// Device code of round-to-nearest quantization for row-local groups (per-channel, per-group, MX, NVFP4). No
/// allocation, no exceptions, no classes: the host validated every shape. Each kernel mirrors the CPU kernels' float
/// operations one for one (IEEE division, round-half-even, the same clamps), so results are equal bit for bit.
/// </summary>
internal static class QuantizeKernels
{
    // E4M3 constants for NVFP4 block scales: mantissa 3, bias 7, smallest normal exponent −6, largest code 0x7E.
    private const int E4M3Mantissa = 3;
    private const int E4M3Bias = 7;
    private const int E4M3MinNormal = -6;
    private const int E4M3MaxCode = 0x7E;
    private const int E4M3SignBit = 0x80;

    /// <summary>
    /// Partial statistics of a row: thread p of row r covers columns p, p + parts, p + 2·parts, … so that neighbouring
    /// threads read neighbouring addresses (coalesced). Max, min and max |w| are exact whatever the order, so the
    /// partials reduce to exactly the CPU's statistics.
    /// </summary>
    public static void PartialStats(Index1D index, ArrayView<float> weight, ArrayView<float> absMax, ArrayView<float> min, ArrayView<float> max,
        int columns, int parts)
    {
        int row = index / parts;
        int part = index % parts;
        long offset = (long)row * columns;
        float a = 0, lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        for (int c = part; c < columns; c += parts)
        {
            float v = weight[offset + c];
            a = MathF.Max(a, MathF.Abs(v));
            lo = MathF.Min(lo, v);
            hi = MathF.Max(hi, v);
        }

        absMax[index] = a;
        min[index] = lo;
        max[index] = hi;
    }

    /// <summary><c>output[i] = max(input[i·chunk .. min((i+1)·chunk, count)))</c>: one level of a max reduction.</summary>
    public static void ReduceMax(Index1D index, ArrayView<float> input, ArrayView<float> output, int count, int chunk)
    {
        float max = 0;
        int i0 = index;
        long end = Math.Min((long)(i0 + 1) * chunk, count);
        for (long i = (long)i0 * chunk; i < end; i++)
        {
            max = MathF.Max(max, input[i]);
        }

        output[index] = max;
    }

    /// <summary>One thread: g = max(<paramref name="maxima"/>) / (448·6) into <paramref name="tensorScale"/>[0] (NVFP4).</summary>
    public static void TensorScale(Index1D index, ArrayView<float> maxima, ArrayView<float> tensorScale, int count)
    {
        float max = 0;
        for (int i = 0; i < count; i++)
        {
            max = MathF.Max(max, maxima[i]);
        }

        tensorScale[0] = max / (448f * 6f);
    }

    /// <summary>Per row (per-channel groups): reduce the row's partials, then choose its scale.</summary>
    public static void ChannelScales(Index1D row, ArrayView<float> absMax, ArrayView<float> min, ArrayView<float> max, int parts,
        ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<float> tensorScale, GpuFormatSpec spec)
    {
        float a = 0, lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        long start = (long)(int)row * parts;
        for (int p = 0; p < parts; p++)
        {
            a = MathF.Max(a, absMax[start + p]);
            lo = MathF.Min(lo, min[start + p]);
            hi = MathF.Max(hi, max[start + p]);
        }

        StoreScale(row, a, lo, hi, scales, zeros, tensorScale, spec);
    }

    /// <summary>Per group: its scale (and zero point), from the group's statistics.</summary>
    public static void GroupScales(Index1D group, ArrayView<float> weight, ArrayView<float> scales, ArrayView<byte> zeros,
        ArrayView<float> tensorScale, GpuFormatSpec spec)
    {
        int row = group / spec.SegmentsPerRow;
        int start = (group % spec.SegmentsPerRow) * spec.SegmentWidth;
        int length = Math.Min(spec.SegmentWidth, spec.Columns - start);
        long offset = (long)row * spec.Columns + start;
        float absMax = 0, min = 0, max = 0;
        for (int i = 0; i < length; i++)
        {
            float v = weight[offset + i];
            absMax = MathF.Max(absMax, MathF.Abs(v));
            min = i == 0 ? v : MathF.Min(min, v);
            max = i == 0 ? v : MathF.Max(max, v);
        }

        StoreScale(group, absMax, min, max, scales, zeros, tensorScale, spec);
    }

    /// <summary>The scale (and zero point) of a group from its statistics: the CPU formats' formulas, operation for operation.</summary>
    private static void StoreScale(int group, float absMax, float min, float max, ArrayView<float> scales, ArrayView<byte> zeros,
        ArrayView<float> tensorScale, GpuFormatSpec spec)
    {
        scales[group] = ScaleOf(absMax, min, max, spec, tensorScale[0], out int zero);
        if (spec.Element == GpuElementKind.IntegerAsymmetric)
        {
            zeros[group] = (byte)zero;
        }
    }

    internal static float ScaleOf(float absMax, float min, float max, GpuFormatSpec spec, float tensorScale, out int zero)
    {
        zero = 0;
        switch (spec.ScaleKind)
        {
            case GpuScaleKind.Integer:
                if (spec.Element == GpuElementKind.IntegerSymmetric)
                {
                    return absMax / spec.SymmetricMax;
                }
                else
                {
                    float low = MathF.Min(min, 0), high = MathF.Max(max, 0);
                    float scale = (high - low) / spec.High;
                    zero = scale == 0 ? 0 : (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(-low / scale, 0), spec.High));
                    return scale;
                }

            case GpuScaleKind.FloatMax:
                return absMax / spec.MaxNormal;
            case GpuScaleKind.SharedExponent:
            {
                // floor(log2(amax)) from the exponent bits; a float32-subnormal amax clamps to −127 anyway.
                int exponentField = (BitConverter.SingleToInt32Bits(absMax) >> 23) & 0xFF;
                int shared = absMax > 0 && exponentField > 0 ? exponentField - 127 - spec.MaxExponent : -127;
                return GpuFormatSpec.PowerOfTwo(Math.Min(Math.Max(shared, -127), 127));
            }

            default:
                return tensorScale > 0
                    ? GpuFormatSpec.DecodeMiniFloat(
                        GpuFormatSpec.EncodeMiniFloat(absMax / (6f * tensorScale), E4M3Mantissa, E4M3Bias, E4M3MinNormal, E4M3MaxCode, E4M3SignBit),
                        E4M3Mantissa, E4M3Bias, E4M3MinNormal, E4M3SignBit)
                    : 0f;
        }
    }

    /// <summary>
    /// One thread per weight, groups of 16 or 32 held by consecutive lanes of a warp: the group's absmax by butterfly
    /// shuffles (exact: max is order-free), the scale in every lane, codes packed by the even lane of each pair. Loads
    /// and stores are coalesced. Needs columns divisible by the group and a warp of at least the group's size.
    /// </summary>
    public static void WarpGroups(Index1D index, ArrayView<float> weight, ArrayView<float> scales, ArrayView<float> tensorScale,
        ArrayView<byte> packed, GpuFormatSpec spec, int total)
    {
        int i = index;
        bool inside = i < total;
        float x = inside ? weight[i] : 0f;
        float a = MathF.Abs(x);
        for (int mask = spec.SegmentWidth / 2; mask >= 1; mask /= 2)
        {
            a = MathF.Max(a, Warp.ShuffleXor(a, mask));
        }

        int row = i / spec.Columns, column = i % spec.Columns;
        float g = tensorScale[0];
        float scale = ScaleOf(a, 0, 0, spec, g, out _);
        if (inside && column % spec.SegmentWidth == 0)
        {
            scales[row * spec.SegmentsPerRow + column / spec.SegmentWidth] = scale;
        }

        int code = EncodeValue(x, scale, 0, spec, g);
        StorePacked(inside, row, column, code, packed, spec);
    }

    /// <summary>One thread per weight with precomputed scales (per-channel, per-group): codes packed as in <see cref="WarpGroups"/>.</summary>
    public static void WarpEncode(Index1D index, ArrayView<float> weight, ArrayView<float> scales, ArrayView<byte> zeros,
        ArrayView<float> tensorScale, ArrayView<byte> packed, GpuFormatSpec spec, int total)
    {
        int i = index;
        bool inside = i < total;
        int row = i / spec.Columns, column = i % spec.Columns;
        int group = row * spec.SegmentsPerRow + column / spec.SegmentWidth;
        int code = 0;
        if (inside)
        {
            code = EncodeValue(weight[i], scales[group], spec.Element == GpuElementKind.IntegerAsymmetric ? zeros[group] : 0, spec, tensorScale[0]);
        }

        StorePacked(inside, row, column, code, packed, spec);
    }

    /// <summary>8-bit codes: one byte per lane; 4-bit codes: the even lane of each pair writes both nibbles.</summary>
    private static void StorePacked(bool inside, int row, int column, int code, ArrayView<byte> packed, GpuFormatSpec spec)
    {
        if (spec.CodeBits == 8)
        {
            if (inside)
            {
                packed[(long)row * spec.Stride + column] = (byte)code;
            }

            return;
        }

        int neighbour = Warp.ShuffleXor(code, 1);
        if (inside && (column & 1) == 0)
        {
            packed[(long)row * spec.Stride + (column >> 1)] = (byte)((code & 0xF) | ((neighbour & 0xF) << 4));
        }
    }

    /// <summary>
    /// Per group, in one pass: statistics, scale, then the group's codes packed straight into its bytes. For groups
    /// that start on a byte boundary (group width × code bits a multiple of 8): MX, NVFP4, per-group integer and FP.
    /// </summary>
    public static void FusedGroups(Index1D group, ArrayView<float> weight, ArrayView<float> scales, ArrayView<byte> zeros,
        ArrayView<float> tensorScale, ArrayView<byte> packed, GpuFormatSpec spec)
    {
        GroupScales(group, weight, scales, zeros, tensorScale, spec);
        int row = group / spec.SegmentsPerRow;
        int start = (group % spec.SegmentsPerRow) * spec.SegmentWidth;
        int length = Math.Min(spec.SegmentWidth, spec.Columns - start);
        int bits = spec.CodeBits;
        long firstByte = (long)row * spec.Stride + start * bits / 8;
        int byteCount = (length * bits + 7) / 8;
        for (int b = 0; b < byteCount; b++)
        {
            packed[firstByte + b] = PackedByte(weight, scales, zeros, tensorScale, spec, row, start, length, b * 8);
        }
    }

    /// <summary>Per packed byte: the codes whose bits fall in it, computed and packed (little-endian bitstream).</summary>
    public static void EncodePack(Index1D index, ArrayView<float> weight, ArrayView<float> scales, ArrayView<byte> zeros,
        ArrayView<float> tensorScale, ArrayView<byte> packed, GpuFormatSpec spec)
    {
        int row = index / spec.Stride;
        packed[index] = PackedByte(weight, scales, zeros, tensorScale, spec, row, 0, spec.Columns, (index % spec.Stride) * 8);
    }

    /// <summary>
    /// Byte covering bits [bitStart, bitStart + 8) of the little-endian bitstream of the <paramref name="count"/> codes
    /// that start at <paramref name="firstColumn"/> of <paramref name="row"/> (the layout of <c>BitPacker</c>).
    /// </summary>
    private static byte PackedByte(ArrayView<float> weight, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<float> tensorScale,
        GpuFormatSpec spec, int row, int firstColumn, int count, int bitStart)
    {
        int bits = spec.CodeBits;
        int result = 0;
        for (int k = bitStart / bits; k < count && k * bits < bitStart + 8; k++)
        {
            int code = Encode(weight, scales, zeros, tensorScale, spec, row, firstColumn + k) & ((1 << bits) - 1);
            int shift = k * bits - bitStart;
            result |= shift >= 0 ? code << shift : code >> -shift;
        }

        return (byte)result;
    }

    /// <summary>
    /// Code <paramref name="column"/> of the little-endian bitstream of <paramref name="bits"/>-bit codes that starts at
    /// byte <paramref name="rowStart"/> (the layout of <c>BitPacker</c>): one byte, or two when the code straddles them.
    /// </summary>
    internal static int UnpackCode(ArrayView<byte> packed, long rowStart, int column, int bits)
    {
        int bit = column * bits;
        long byteIndex = rowStart + (bit >> 3);
        int shift = bit & 7;
        int word = packed[byteIndex] >> shift;
        if (shift + bits > 8)
        {
            word |= packed[byteIndex + 1] << (8 - shift);
        }

        return word & ((1 << bits) - 1);
    }

    /// <summary>Per element: unpack its code and decode it.</summary>
    public static void Dequantize(Index1D index, ArrayView<byte> packed, ArrayView<float> scales, ArrayView<byte> zeros,
        ArrayView<float> tensorScale, ArrayView<float> destination, GpuFormatSpec spec)
    {
        int row = index / spec.Columns;
        int column = index % spec.Columns;
        int code = UnpackCode(packed, (long)row * spec.Stride, column, spec.CodeBits);
        int group = row * spec.SegmentsPerRow + column / spec.SegmentWidth;
        float value = DecodeValue(code, scales[group], spec.Element == GpuElementKind.IntegerAsymmetric ? zeros[group] : 0, spec,
            spec.ScaleKind == GpuScaleKind.Nvfp4 ? tensorScale[0] : 1f);
        destination[index] = value;
    }

    /// <summary>Per element, BF16 output: <see cref="Dequantize"/>'s value rounded to BF16 bits (nearest, ties to even).</summary>
    public static void DequantizeBFloat16(Index1D index, ArrayView<byte> packed, ArrayView<float> scales, ArrayView<byte> zeros,
        ArrayView<float> tensorScale, ArrayView<ushort> destination, GpuFormatSpec spec)
    {
        int row = index / spec.Columns;
        int column = index % spec.Columns;
        int code = UnpackCode(packed, (long)row * spec.Stride, column, spec.CodeBits);
        int group = row * spec.SegmentsPerRow + column / spec.SegmentWidth;
        float value = DecodeValue(code, scales[group], spec.Element == GpuElementKind.IntegerAsymmetric ? zeros[group] : 0, spec,
            spec.ScaleKind == GpuScaleKind.Nvfp4 ? tensorScale[0] : 1f);
        destination[index] = (ushort)BFloat16Store.Bits(value);
    }

    /// <summary><c>destination[i]</c> = the float32 widening of BF16 bits <c>source[i]</c> (exact).</summary>
    public static void WidenBFloat16(Index1D index, ArrayView<ushort> source, ArrayView<float> destination) =>
        destination[index] = BitConverter.Int32BitsToSingle(source[index] << 16);

    /// <summary>The value of one code: the CPU formats' decoding for each element kind.</summary>
    internal static float DecodeValue(int code, float scale, int zero, GpuFormatSpec spec, float tensorScale)
    {
        switch (spec.Element)
        {
            case GpuElementKind.IntegerSymmetric:
                return ((float)code - spec.Offset) * scale;
            case GpuElementKind.IntegerAsymmetric:
                return ((float)code - zero) * scale;
            case GpuElementKind.MxInt8:
                // Sign-extended by arithmetic, not by an (sbyte) cast: on CUDA, ILGPU 1.5 turned that cast chain into
                // an unsigned value (the H100 check of GpuBench caught it; the CPU simulator runs .NET's own cast).
                return ((code ^ 0x80) - 0x80) / 64f * scale;
            default:
                float element = GpuFormatSpec.DecodeMiniFloat(code, spec.MantissaBits, spec.Bias, spec.MinNormalExponent, spec.SignBit);
                return element * (spec.ScaleKind == GpuScaleKind.Nvfp4 ? scale * tensorScale : scale);
        }
    }

    private static int Encode(ArrayView<float> weight, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<float> tensorScale,
        GpuFormatSpec spec, int row, int column)
    {
        int group = row * spec.SegmentsPerRow + column / spec.SegmentWidth;
        int zero = spec.Element == GpuElementKind.IntegerAsymmetric ? zeros[group] : 0;
        return EncodeValue(weight[(long)row * spec.Columns + column], scales[group], zero, spec, tensorScale[0]);
    }

    /// <summary>The code of one weight: the CPU kernels' arithmetic for each element kind (codes not yet masked).</summary>
    internal static int EncodeValue(float x, float scale, int zero, GpuFormatSpec spec, float tensorScale)
    {
        switch (spec.Element)
        {
            // Clamp, then round (equal, since the bounds are integers): the clamped value suits the cheap rounding.
            case GpuElementKind.IntegerSymmetric:
                return scale == 0 ? spec.Offset
                    : (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(x / scale, spec.Low - spec.Offset), spec.High - spec.Offset)) + spec.Offset;
            case GpuElementKind.IntegerAsymmetric:
                return scale == 0 ? zero : (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(x / scale, -zero), spec.High - zero)) + zero;
            case GpuElementKind.MxInt8:
                return (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(x / scale * 64f, -127f), 127f)) & 0xFF;
            default:
            {
                float divisor = spec.ScaleKind == GpuScaleKind.Nvfp4 ? scale * tensorScale : scale;
                return divisor == 0
                    ? 0
                    : GpuFormatSpec.EncodeMiniFloat(x / divisor, spec.MantissaBits, spec.Bias, spec.MinNormalExponent, spec.MaxCode, spec.SignBit);
            }
        }
    }
}
