// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization.Gpu;

/// <summary>The kind of element coding a kernel applies.</summary>
internal enum GpuElementKind
{
    IntegerSymmetric,
    IntegerAsymmetric,
    MiniFloat,
    MxInt8,
}

/// <summary>The kind of scale a kernel computes per group.</summary>
internal enum GpuScaleKind
{
    Integer,
    FloatMax,
    SharedExponent,
    Nvfp4,
}

/// <summary>
/// Everything a kernel needs to know of a format, as plain numbers (ILGPU kernels take no classes or arrays). The
/// arithmetic below is the integer-bit arithmetic of the CPU SIMD encoder, written once more for one lane; the tests
/// hold every result to the CPU path bit for bit.
/// </summary>
internal readonly struct GpuFormatSpec
{
    public GpuElementKind Element { get; init; }
    public GpuScaleKind ScaleKind { get; init; }
    public int CodeBits { get; init; }
    public int Columns { get; init; }
    public int Stride { get; init; }
    public int SegmentWidth { get; init; }
    public int SegmentsPerRow { get; init; }

    // Integer grid.
    public int Offset { get; init; }
    public int Low { get; init; }
    public int High { get; init; }
    public float SymmetricMax { get; init; }

    // Small float (element, or E4M3 for NVFP4 block scales through ScaleSpec).
    public int MantissaBits { get; init; }
    public int Bias { get; init; }
    public int MinNormalExponent { get; init; }
    public float MaxNormal { get; init; }
    public int MaxCode { get; init; }
    public int SignBit { get; init; }
    public int MaxExponent { get; init; }

    /// <summary>Saturating encode of <paramref name="y"/> (finite) to a small-float code.</summary>
    public static int EncodeMiniFloat(float y, int mantissaBits, int bias, int minNormalExponent, int maxCode, int signBit)
    {
        int bits = BitConverter.SingleToInt32Bits(y);
        int magnitude = bits & 0x7FFF_FFFF;
        int sign = ((int)((uint)bits >> 31)) * signBit;
        int shift = 23 - mantissaBits;
        // Both candidates, then a select: branches here diverge within a warp (small formats have many subnormals).
        int rounded = magnitude + ((1 << (shift - 1)) - 1) + ((magnitude >> shift) & 1);
        int normal = (rounded >> shift) - ((127 - bias) << mantissaBits);
        float magic = BitConverter.Int32BitsToSingle((minNormalExponent - mantissaBits + 23 + 127) << 23);
        int subnormal = BitConverter.SingleToInt32Bits(BitConverter.Int32BitsToSingle(magnitude) + magic) - BitConverter.SingleToInt32Bits(magic);
        int code = magnitude >= (minNormalExponent + 127) << 23 ? normal : subnormal;
        return (code < maxCode ? code : maxCode) | sign;
    }

    /// <summary>The value of a small-float code (finite codes only; kernels never see the others).</summary>
    public static float DecodeMiniFloat(int code, int mantissaBits, int bias, int minNormalExponent, int signBit)
    {
        int magnitudeCode = code & (signBit - 1);
        int exponentField = magnitudeCode >> mantissaBits;
        int mantissa = magnitudeCode & ((1 << mantissaBits) - 1);
        float value = exponentField == 0
            ? mantissa * PowerOfTwo(minNormalExponent - mantissaBits)
            : ((1 << mantissaBits) + mantissa) * PowerOfTwo(exponentField - bias - mantissaBits);
        return (code & signBit) != 0 ? -value : value;
    }

    /// <summary>2^k for k in [−127, 127] (2^-127 is the one subnormal needed, the smallest E8M0 scale).</summary>
    public static float PowerOfTwo(int k) => k >= -126 ? BitConverter.Int32BitsToSingle((k + 127) << 23) : BitConverter.Int32BitsToSingle(0x0040_0000);
}
