// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization.Gpu;

/// <summary>
/// The element coding of a bandwidth kernel, as a type parameter: the host picks the struct once per launch, so each
/// kernel is compiled for one element kind and codes eight weights in straight-line code (a runtime switch per
/// element became an indirect branch per weight in the PTX, and the select between x · (1/s) and x / s computed both).
/// The arithmetic is that of <see cref="QuantizeKernels.EncodeValue"/> and <see cref="QuantizeKernels.DecodeValue"/>.
/// </summary>
internal interface IElementEncoder
{
    /// <summary>The code of <paramref name="x"/> against a non-zero <paramref name="divisor"/> (with its IEEE reciprocal).</summary>
    int Encode(float x, float divisor, float reciprocal, int zero, GpuFormatSpec spec);

    /// <summary>The code of every weight of a group whose divisor is 0 (its weights are all 0).</summary>
    int ZeroDivisorCode(int zero, GpuFormatSpec spec);
}

/// <summary>Symmetric integers: round(clamp(x / s)) + offset.</summary>
internal readonly struct IntegerSymmetricEncoder : IElementEncoder
{
    // clamp(round(y) + offset, low, high) = round(clamp(y, low − offset, high − offset)) + offset: the bounds are
    // integers and rounding is monotone, and the clamped value is small enough for RoundHalfEven.
    public int Encode(float x, float divisor, float reciprocal, int zero, GpuFormatSpec spec) =>
        (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(x / divisor, spec.Low - spec.Offset), spec.High - spec.Offset)) + spec.Offset;

    public int ZeroDivisorCode(int zero, GpuFormatSpec spec) => spec.Offset;
}

/// <summary>Asymmetric integers: round(clamp(x / s)) + zero point.</summary>
internal readonly struct IntegerAsymmetricEncoder : IElementEncoder
{
    public int Encode(float x, float divisor, float reciprocal, int zero, GpuFormatSpec spec) =>
        (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(x / divisor, -zero), spec.High - zero)) + zero;

    public int ZeroDivisorCode(int zero, GpuFormatSpec spec) => zero;
}

/// <summary>Small floats against a float scale (FP8/FP4 per channel or group, NVFP4): x / s, then the saturating code.</summary>
internal readonly struct MiniFloatEncoder : IElementEncoder
{
    public int Encode(float x, float divisor, float reciprocal, int zero, GpuFormatSpec spec) =>
        GpuFormatSpec.EncodeMiniFloat(x / divisor, spec.MantissaBits, spec.Bias, spec.MinNormalExponent, spec.MaxCode, spec.SignBit);

    public int ZeroDivisorCode(int zero, GpuFormatSpec spec) => 0;
}

/// <summary>MX small floats: the scale is a power of two, so the product by its exact reciprocal is the quotient.</summary>
internal readonly struct SharedExponentEncoder : IElementEncoder
{
    public int Encode(float x, float divisor, float reciprocal, int zero, GpuFormatSpec spec) =>
        GpuFormatSpec.EncodeMiniFloat(x * reciprocal, spec.MantissaBits, spec.Bias, spec.MinNormalExponent, spec.MaxCode, spec.SignBit);

    public int ZeroDivisorCode(int zero, GpuFormatSpec spec) => 0;
}

/// <summary>MXINT8: round(clamp(x / s · 64)), the scale a power of two.</summary>
internal readonly struct MxInt8Encoder : IElementEncoder
{
    public int Encode(float x, float divisor, float reciprocal, int zero, GpuFormatSpec spec) =>
        (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max(x * reciprocal * 64f, -127f), 127f)) & 0xFF;

    public int ZeroDivisorCode(int zero, GpuFormatSpec spec) => 0;
}

/// <summary>The decoding counterpart of <see cref="IElementEncoder"/>, for <see cref="DequantizeKernels"/>.</summary>
internal interface IElementDecoder
{
    /// <summary>The value of <paramref name="code"/> with its group's <paramref name="scale"/> (for NVFP4, block scale · g)
    /// and zero point; <paramref name="subnormalUnit"/> is 2^(emin − m) of the small-float element.</summary>
    float Decode(int code, float scale, int zero, float subnormalUnit, GpuFormatSpec spec);
}

/// <summary>(code − offset) · s.</summary>
internal readonly struct IntegerSymmetricDecoder : IElementDecoder
{
    public float Decode(int code, float scale, int zero, float subnormalUnit, GpuFormatSpec spec) => ((float)code - spec.Offset) * scale;
}

/// <summary>(code − zero) · s.</summary>
internal readonly struct IntegerAsymmetricDecoder : IElementDecoder
{
    public float Decode(int code, float scale, int zero, float subnormalUnit, GpuFormatSpec spec) => ((float)code - zero) * scale;
}

/// <summary>MXINT8: sign-extended code / 64 · s.</summary>
internal readonly struct MxInt8Decoder : IElementDecoder
{
    // Sign-extended by arithmetic (ILGPU 1.5 mistranslated an (sbyte) cast on CUDA); × 2^-6 is the division by 64,
    // exact either way, without div.rn.f32.
    public float Decode(int code, float scale, int zero, float subnormalUnit, GpuFormatSpec spec) => ((code ^ 0x80) - 0x80) * (1f / 64f) * scale;
}

/// <summary>
/// Small floats, the element built from its bits: a normal code's exponent and mantissa fields, shifted into place and
/// rebiased, are the float32 of the same value (every normal of a format of 8 bits or fewer is a float32 normal), and a
/// subnormal is its mantissa times 2^(emin − m), the exact product <see cref="GpuFormatSpec.DecodeMiniFloat"/> forms.
/// The element is exact either way, so the one rounding, by the scale, is the CPU's.
/// </summary>
internal readonly struct MiniFloatDecoder : IElementDecoder
{
    public float Decode(int code, float scale, int zero, float subnormalUnit, GpuFormatSpec spec)
    {
        int magnitude = code & (spec.SignBit - 1);
        float normal = BitConverter.Int32BitsToSingle((magnitude << (23 - spec.MantissaBits)) + ((127 - spec.Bias) << 23));
        float subnormal = magnitude * subnormalUnit;
        float element = magnitude >> spec.MantissaBits == 0 ? subnormal : normal;
        return ((code & spec.SignBit) != 0 ? -element : element) * scale;
    }
}
