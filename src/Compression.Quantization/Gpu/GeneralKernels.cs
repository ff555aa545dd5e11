// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>
/// Device code of round-to-nearest quantization for everything the fast kernels of <see cref="QuantizeKernels"/> do
/// not cover: groups spanning several rows (per-tensor, per-block), FP16/BF16 scale storage, non-saturating FP
/// conversion, the clipping search, NF4 elements and ternary formats. Three passes: statistics per row segment,
/// statistics and scale per group, then codes per packed byte. Each step repeats the CPU formats' float operations in
/// the same order, so results are equal bit for bit.
/// </summary>
/// <remarks>
/// ILGPU emits <c>mul.f32</c>/<c>add.f32</c> without a rounding qualifier, which lets the PTX assembler fuse a product
/// feeding a sum into one FMA (one rounding instead of two). Wherever the CPU rounds a product before adding, the
/// kernels form the product as <see cref="Mul"/>: exact in float64, then one rounding to float32, which is the
/// float32 product bit for bit and cannot be fused with the following float32 addition.
/// </remarks>
internal static class GeneralKernels
{
    /// <summary>
    /// Statistics of one row segment: max |w|, min, max and, for ternary formats, Σ|w| in float64 in index order (the
    /// order <c>GroupStats.Of</c> uses, so the sums agree exactly).
    /// </summary>
    public static void SegmentStats(Index1D index, ArrayView<float> weight, ArrayView<float> absMax, ArrayView<float> min, ArrayView<float> max,
        ArrayView<double> sumAbs, GeneralSpec spec)
    {
        int row = index / spec.SegmentsPerRow;
        int start = (index % spec.SegmentsPerRow) * spec.SegmentWidth;
        int length = Math.Min(spec.SegmentWidth, spec.Columns - start);
        long offset = (long)row * spec.Columns + start;
        bool sums = spec.Element is GeneralElement.TernaryAbsMean or GeneralElement.TernaryThreshold;
        float a = 0, lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        double sum = 0;
        for (int i = 0; i < length; i++)
        {
            float v = weight[offset + i];
            a = MathF.Max(a, MathF.Abs(v));
            lo = MathF.Min(lo, v);
            hi = MathF.Max(hi, v);
            if (sums)
            {
                sum += MathF.Abs(v);
            }
        }

        absMax[index] = a;
        min[index] = lo;
        max[index] = hi;
        if (sums)
        {
            sumAbs[index] = sum;
        }
    }

    /// <summary>
    /// Per group: merge the statistics of its segments row by row (as <c>GroupStats.Add</c> does), then choose its
    /// scale, zero point and (TWN) threshold. NF4 stores the raw absmax for <see cref="Nf4Kernels"/>. A scale that
    /// overflows its FP16/BF16 storage sets <paramref name="overflow"/>[0] (and [1] to the scale) for the host to report.
    /// </summary>
    public static void GroupScales(Index1D index, ArrayView<float> weight, ArrayView<float> segmentAbsMax, ArrayView<float> segmentMin,
        ArrayView<float> segmentMax, ArrayView<double> segmentSum, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<float> thresholds,
        ArrayView<float> overflow, GeneralSpec spec)
    {
        int group = index;
        int segment = group % spec.SegmentsPerRow;
        int firstRow = group / spec.SegmentsPerRow * spec.BlockRows;
        int rowCount = Math.Min(spec.BlockRows, spec.Rows - firstRow);
        int start = segment * spec.SegmentWidth;
        int length = Math.Min(spec.SegmentWidth, spec.Columns - start);
        float a = 0, lo = 0, hi = 0;
        double sum = 0;
        for (int r = 0; r < rowCount; r++)
        {
            long s = (long)(firstRow + r) * spec.SegmentsPerRow + segment;
            a = MathF.Max(a, segmentAbsMax[s]);
            lo = r == 0 ? segmentMin[s] : MathF.Min(lo, segmentMin[s]);
            hi = r == 0 ? segmentMax[s] : MathF.Max(hi, segmentMax[s]);
            if (spec.Element is GeneralElement.TernaryAbsMean or GeneralElement.TernaryThreshold)
            {
                sum += segmentSum[s];
            }
        }

        switch (spec.Element)
        {
            case GeneralElement.Nf4:
                scales[group] = a;
                return;
            case GeneralElement.MiniFloat:
                scales[group] = Checked(a / spec.MaxNormal, spec, overflow);
                return;
            case GeneralElement.TernaryAbsMean:
            case GeneralElement.TernaryThreshold:
            {
                long count = (long)rowCount * length;
                float mean = count == 0 ? 0 : (float)(sum / count);
                float scale = Checked(mean, spec, overflow);
                if (spec.Element == GeneralElement.TernaryThreshold)
                {
                    float threshold = 0.7f * mean;
                    thresholds[group] = threshold;
                    scale = Checked(KeptMean(weight, firstRow, rowCount, start, length, threshold, spec), spec, overflow);
                }

                scales[group] = scale;
                return;
            }

            default:
            {
                float shrink = spec.ClipSteps >= 0 ? SearchShrink(weight, firstRow, rowCount, start, length, a, lo, hi, spec) : 1f;
                scales[group] = ChooseShrunk(a, lo, hi, shrink, spec, overflow, out int zero);
                if (spec.Element == GeneralElement.IntegerAsymmetric)
                {
                    zeros[group] = (byte)zero;
                }

                return;
            }
        }
    }

    /// <summary>The integer scale (and zero point) of a group whose range is shrunk by <paramref name="shrink"/>: <c>IntegerFormat.ChooseShrunk</c>.</summary>
    private static float ChooseShrunk(float absMax, float min, float max, float shrink, GeneralSpec spec, ArrayView<float> overflow, out int zero)
    {
        zero = 0;
        if (spec.Element == GeneralElement.IntegerSymmetric)
        {
            return Checked(absMax * shrink / spec.SymmetricMax, spec, overflow);
        }

        float low = Mul(MathF.Min(min, 0), shrink), high = Mul(MathF.Max(max, 0), shrink);
        float scale = Checked((high - low) / spec.High, spec, overflow);
        zero = scale == 0 ? 0 : (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(-low / scale, 0f), spec.High));
        return scale;
    }

    /// <summary>
    /// The GPTQ <c>mse</c> grid search of <c>IntegerFormat.SearchShrink</c>, one thread per group: the same candidates,
    /// the same float32 codes and the same float64 error sum in the same order (rows, then columns).
    /// </summary>
    private static float SearchShrink(ArrayView<float> weight, int firstRow, int rowCount, int start, int length, float absMax, float min, float max,
        GeneralSpec spec)
    {
        bool symmetric = spec.Element == GeneralElement.IntegerSymmetric;
        double bestError = double.PositiveInfinity;
        float best = 1f;
        for (int i = 0; i <= spec.ClipSteps; i++)
        {
            float p = 1f - (float)i / spec.ClipGrid;
            float scale, zero;
            int lo;
            if (symmetric)
            {
                scale = absMax * p / spec.SymmetricMax;
                zero = spec.Offset;
                lo = spec.Low;
            }
            else
            {
                float low = Mul(MathF.Min(min, 0), p), high = Mul(MathF.Max(max, 0), p);
                scale = (high - low) / spec.High;
                zero = scale == 0 ? 0 : QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(-low / scale, 0f), spec.High));
                lo = 0;
            }

            if (scale == 0)
            {
                return 1f;
            }

            double error = 0;
            for (int r = firstRow; r < firstRow + rowCount; r++)
            {
                long offset = (long)r * spec.Columns + start;
                for (int c = 0; c < length; c++)
                {
                    float v = weight[offset + c];
                    float q = QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(v / scale, lo - zero), spec.High - zero)) + zero;
                    error += Math.Pow(MathF.Abs(Mul(q - zero, scale) - v), spec.ClipNorm);
                }
            }

            if (error < bestError)
            {
                bestError = error;
                best = p;
            }
        }

        return best;
    }

    /// <summary>TWN's α: the float64 mean of |w| over the weights above the threshold, in row-major order (<c>TernaryFormat.KeptMean</c>).</summary>
    private static float KeptMean(ArrayView<float> weight, int firstRow, int rowCount, int start, int length, float threshold, GeneralSpec spec)
    {
        double sum = 0;
        long kept = 0;
        for (int r = firstRow; r < firstRow + rowCount; r++)
        {
            long offset = (long)r * spec.Columns + start;
            for (int c = 0; c < length; c++)
            {
                float magnitude = MathF.Abs(weight[offset + c]);
                if (magnitude > threshold)
                {
                    sum += magnitude;
                    kept++;
                }
            }
        }

        return kept == 0 ? 0 : (float)(sum / kept);
    }

    /// <summary>Per packed byte: the codes whose bits (or trits) fall in it, computed and packed as the CPU packers do.</summary>
    public static void EncodePack(Index1D index, ArrayView<float> weight, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<float> thresholds,
        ArrayView<byte> packed, GeneralSpec spec)
    {
        int row = index / spec.Stride;
        int b = index % spec.Stride;
        int result = 0;
        if (spec.Trits)
        {
            // TritPacker: byte = Σ tᵢ·3ⁱ over five trits, a short last group padded with 0.
            for (int k = 4; k >= 0; k--)
            {
                int column = 5 * b + k;
                result = result * 3 + (column < spec.Columns ? Encode(weight, scales, zeros, thresholds, spec, row, column) : 0);
            }
        }
        else
        {
            // BitPacker: a little-endian bitstream, code i in bits [i·b, (i+1)·b).
            int bits = spec.CodeBits;
            int bitStart = b * 8;
            for (int k = bitStart / bits; k < spec.Columns && k * bits < bitStart + 8; k++)
            {
                int code = Encode(weight, scales, zeros, thresholds, spec, row, k) & ((1 << bits) - 1);
                int shift = k * bits - bitStart;
                result |= shift >= 0 ? code << shift : code >> -shift;
            }
        }

        packed[index] = (byte)result;
    }

    private static int Encode(ArrayView<float> weight, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<float> thresholds,
        GeneralSpec spec, int row, int column)
    {
        int group = row / spec.BlockRows * spec.SegmentsPerRow + column / spec.SegmentWidth;
        float x = weight[(long)row * spec.Columns + column];
        float scale = scales[group];
        switch (spec.Element)
        {
            case GeneralElement.IntegerSymmetric:
                return scale == 0 ? spec.Offset : (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(x / scale, spec.Low - spec.Offset), spec.High - spec.Offset)) + spec.Offset;
            case GeneralElement.IntegerAsymmetric:
            {
                int zero = zeros[group];
                return scale == 0 ? zero : (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(x / scale, -zero), spec.High - zero)) + zero;
            }

            case GeneralElement.MiniFloat:
                return scale == 0 ? 0 : EncodeMiniFloat(x / scale, spec);
            case GeneralElement.Nf4:
            {
                if (scale == 0)
                {
                    return 7;
                }

                // Nf4Format.Encode: the number of midpoints strictly below the value (ties go to the lower code).
                float y = x / scale;
                int code = 0;
                for (int m = 0; m < 15; m++)
                {
                    code += y > (Nf4Value(m) + Nf4Value(m + 1)) * 0.5f ? 1 : 0;
                }

                return code;
            }

            case GeneralElement.TernaryAbsMean:
                return scale == 0 ? 1 : (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(x / scale, -1f), 1f)) + 1;
            default:
                return MathF.Abs(x) > thresholds[group] ? (x > 0 ? 2 : 0) : 1;
        }
    }

    /// <summary>
    /// <c>MiniFloatCodec.Encode(y, saturate)</c> for finite <paramref name="y"/> in integer arithmetic on its bits: the
    /// code is monotone in |y|, so a rounded code above the largest finite one is exactly an overflow, which saturates
    /// or becomes the format's ∞/NaN code.
    /// </summary>
    public static int EncodeMiniFloat(float y, GeneralSpec spec)
    {
        int bits = BitConverter.SingleToInt32Bits(y);
        int magnitude = bits & 0x7FFF_FFFF;
        int sign = ((int)((uint)bits >> 31)) * spec.SignBit;
        int shift = 23 - spec.MantissaBits;
        int code;
        if (magnitude >= (spec.MinNormalExponent + 127) << 23)
        {
            int rounded = magnitude + ((1 << (shift - 1)) - 1) + ((magnitude >> shift) & 1);
            code = (rounded >> shift) - ((127 - spec.Bias) << spec.MantissaBits);
        }
        else
        {
            float magic = BitConverter.Int32BitsToSingle((spec.MinNormalExponent - spec.MantissaBits + 23 + 127) << 23);
            code = BitConverter.SingleToInt32Bits(BitConverter.Int32BitsToSingle(magnitude) + magic) - BitConverter.SingleToInt32Bits(magic);
        }

        if (code > spec.MaxCode)
        {
            code = spec.Saturate ? spec.MaxCode : spec.OverflowCode;
        }

        return code | sign;
    }

    /// <summary>Per element: unpack its code and decode it as <c>GroupedFormat.Dequantize</c> does.</summary>
    public static void Dequantize(Index1D index, ArrayView<byte> packed, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<float> destination,
        GeneralSpec spec)
    {
        int row = index / spec.Columns;
        int column = index % spec.Columns;
        int code;
        if (spec.Trits)
        {
            int value = packed[(long)row * spec.Stride + column / 5];
            for (int k = column % 5; k > 0; k--)
            {
                value /= 3;
            }

            code = value % 3;
        }
        else
        {
            code = QuantizeKernels.UnpackCode(packed, (long)row * spec.Stride, column, spec.CodeBits);
        }

        int group = row / spec.BlockRows * spec.SegmentsPerRow + column / spec.SegmentWidth;
        float scale = scales[group];
        float result;
        switch (spec.Element)
        {
            case GeneralElement.IntegerSymmetric:
                result = ((float)code - spec.Offset) * scale;
                break;
            case GeneralElement.IntegerAsymmetric:
                result = ((float)code - zeros[group]) * scale;
                break;
            case GeneralElement.MiniFloat:
                result = DecodeMiniFloat(code, scale, spec);
                break;
            case GeneralElement.Nf4:
                result = Nf4Value(code & 0xF) * scale;
                break;
            default:
                result = (float)(code - 1) * scale;
                break;
        }

        destination[index] = result;
    }

    /// <summary>
    /// <c>codec.Decode(code) · scale</c>, special codes included. A NaN code gives the NaN the CPU table holds (its
    /// sign bit the opposite of the code's, as <c>-float.NaN</c> flips it) unchanged, since x86 multiplication passes
    /// a NaN operand through; writing it directly also keeps the bits on hardware that canonicalises NaNs.
    /// </summary>
    private static float DecodeMiniFloat(int code, float scale, GeneralSpec spec)
    {
        int maxField = (1 << spec.ExponentBits) - 1;
        int exponentField = (code >> spec.MantissaBits) & maxField;
        int mantissa = code & ((1 << spec.MantissaBits) - 1);
        bool negative = (code & spec.SignBit) != 0;
        bool nan = (spec.Specials == 2 && exponentField == maxField && mantissa != 0) ||
                   (spec.Specials == 1 && exponentField == maxField && mantissa == (1 << spec.MantissaBits) - 1);
        if (nan)
        {
            return BitConverter.Int32BitsToSingle(negative ? 0x7FC0_0000 : unchecked((int)0xFFC0_0000));
        }

        if (spec.Specials == 2 && exponentField == maxField)
        {
            return (negative ? float.NegativeInfinity : float.PositiveInfinity) * scale;
        }

        return GpuFormatSpec.DecodeMiniFloat(code, spec.MantissaBits, spec.Bias, spec.MinNormalExponent, spec.SignBit) * scale;
    }

    /// <summary>The NF4 value of a code (<c>Nf4Format.Values</c>; kernels cannot index a managed array).</summary>
    public static float Nf4Value(int code) => code switch
    {
        0 => -1.0f,
        1 => -0.6961928009986877f,
        2 => -0.5250730514526367f,
        3 => -0.39491748809814453f,
        4 => -0.28444138169288635f,
        5 => -0.18477343022823334f,
        6 => -0.09105003625154495f,
        7 => 0.0f,
        8 => 0.07958029955625534f,
        9 => 0.16093020141124725f,
        10 => 0.24611230194568634f,
        11 => 0.33791524171829224f,
        12 => 0.44070982933044434f,
        13 => 0.5626170039176941f,
        14 => 0.7229568362236023f,
        _ => 1.0f,
    };

    /// <summary>
    /// <c>(float)(Half)scale</c> (storage 1) or <c>(float)(BFloat16)scale</c> (storage 2), round to nearest even, in
    /// integer arithmetic; float32 (storage 0) unchanged. Too large a scale becomes ±∞.
    /// </summary>
    public static float RoundScale(float scale, int storage)
    {
        if (storage == 0)
        {
            return scale;
        }

        int bits = BitConverter.SingleToInt32Bits(scale);
        int sign = bits & unchecked((int)0x8000_0000);
        int magnitude = bits & 0x7FFF_FFFF;
        if (magnitude >= 0x7F80_0000)
        {
            return scale;                                                   // ∞ and NaN stay as they are
        }

        int rounded;
        if (storage == 2)
        {
            // BF16 keeps float32's exponent range (subnormals included): round the low 16 bits away.
            rounded = (magnitude + 0x7FFF + ((magnitude >> 16) & 1)) & unchecked((int)0xFFFF_0000);
        }
        else if (magnitude < 0x3880_0000)
        {
            // Below FP16's smallest normal 2^-14 the step is 2^-24, the ulp of 0.5: the FPU's own round-half-even.
            rounded = BitConverter.SingleToInt32Bits(BitConverter.Int32BitsToSingle(magnitude) + 0.5f - 0.5f);
        }
        else
        {
            rounded = (magnitude + 0xFFF + ((magnitude >> 13) & 1)) & unchecked((int)0xFFFF_E000);
            if (rounded > 0x477F_E000)
            {
                rounded = 0x7F80_0000;                                      // above 65504: FP16 overflows to ∞
            }
        }

        return BitConverter.Int32BitsToSingle(Math.Min(rounded, 0x7F80_0000) | sign);
    }

    /// <summary>The float32 product, rounded once, in a form the PTX assembler cannot fuse into a following addition.</summary>
    public static float Mul(float a, float b) => (float)((double)a * b);

    private static float Checked(float scale, GeneralSpec spec, ArrayView<float> overflow)
    {
        float rounded = RoundScale(scale, spec.ScaleStorage);
        if ((BitConverter.SingleToInt32Bits(rounded) & 0x7F80_0000) == 0x7F80_0000)
        {
            overflow[0] = 1f;
            overflow[1] = scale;
        }

        return rounded;
    }
}
