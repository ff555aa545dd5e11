// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization;

/// <summary>
/// OCP MX v1.0 E8M0 scales: an unsigned biased exponent, value 2^(code − 127) for codes 0..254, NaN for 0xFF.
/// </summary>
public static class E8M0
{
    /// <summary>The NaN code.</summary>
    public const byte NaN = 0xFF;

    /// <summary>2^(code − 127), or NaN for 0xFF.</summary>
    public static float Decode(byte code) => code == NaN ? float.NaN : MathF.ScaleB(1f, code - 127);

    /// <summary>The code of a power of two in [2^-127, 2^127]; NaN for anything else.</summary>
    public static byte Encode(float scale)
    {
        if (!(scale > 0) || !float.IsFinite(scale))
        {
            return NaN;
        }

        int exponent = MathF.ILogB(scale);
        return exponent is >= -127 and <= 127 && MathF.ScaleB(1f, exponent) == scale ? (byte)(exponent + 127) : NaN;
    }

    /// <summary>
    /// The shared exponent the spec prescribes for a block: floor(log2(amax)) − emax of the element format, clamped to
    /// [−127, 127]; −127 for an all-zero block.
    /// </summary>
    public static int SharedExponent(float blockAbsMax, int elementMaxExponent)
    {
        if (!(blockAbsMax > 0))
        {
            return -127;
        }

        // floor(log2) of a normal float is its unbiased exponent field: no logarithm is computed. A float32-subnormal
        // absmax (below 2^-126) always clamps to −127, since emax ≥ 0.
        int exponentField = (BitConverter.SingleToInt32Bits(blockAbsMax) >> 23) & 0xFF;
        return exponentField == 0 ? -127 : Math.Clamp(exponentField - 127 - elementMaxExponent, -127, 127);
    }

    /// <summary>2^<paramref name="exponent"/> for exponents in [−127, 127], built from its bits.</summary>
    public static float PowerOfTwo(int exponent) => exponent >= -126
        ? BitConverter.Int32BitsToSingle((exponent + 127) << 23)
        : BitConverter.Int32BitsToSingle(0x0040_0000);                       // 2^-127, the one subnormal scale
}
