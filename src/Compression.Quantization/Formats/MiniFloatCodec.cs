// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;

namespace Compression.Quantization.Formats;

/// <summary>How a small floating-point format spends its top codes.</summary>
public enum SpecialValues
{
    /// <summary>Every code is finite (OCP FP6 E2M3/E3M2, FP4 E2M1).</summary>
    None,

    /// <summary>Only S.1111.111 is NaN; no infinities (OCP FP8 E4M3, the "FN" variant).</summary>
    NaNOnly,

    /// <summary>IEEE 754 style: the all-ones exponent holds ±infinity and NaNs (OCP FP8 E5M2).</summary>
    Ieee,
}

/// <summary>
/// A small binary floating-point element format (sign, <see cref="ExponentBits"/>, <see cref="MantissaBits"/>,
/// exponent <see cref="Bias"/>): FP8 E4M3/E5M2, FP6 E2M3/E3M2 and FP4 E2M1 as the OCP 8-bit FP and MX v1.0 specs
/// define them. A readonly struct so that span loops and ILGPU kernels specialise per format.
/// </summary>
/// <remarks>
/// <para>Codes sit in the low <see cref="Bits"/> bits of a byte: sign, then exponent, then mantissa.</para>
/// <para>Rounding is to nearest, ties to the even mantissa (the specs' roundTiesToEven), including into and out of
/// the subnormal range. Out-of-range values either saturate to ±<see cref="MaxNormal"/> (the default, and what OCP
/// MX mandates) or overflow IEEE-style: to ±∞ for E5M2, to NaN for E4M3 (it has no infinity), and saturate anyway for
/// formats with no special values. ±∞ saturates too in saturating mode. NaN encodes to the format's NaN code where it
/// has one and to +0 where it has none (FP6, FP4): quantizers reject NaN before it gets here.</para>
/// </remarks>
public readonly struct MiniFloatCodec : IEquatable<MiniFloatCodec>
{
    /// <summary>Creates a format; its largest normal value is derived from the bits and the special values.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The bit counts do not fit in a byte or the bias is out of range.</exception>
    public MiniFloatCodec(string name, int exponentBits, int mantissaBits, int bias, SpecialValues specials)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (exponentBits is < 1 or > 5 || mantissaBits is < 0 or > 6 || 1 + exponentBits + mantissaBits > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(exponentBits), $"E{exponentBits}M{mantissaBits} does not fit in 8 bits.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(bias);
        Name = name;
        ExponentBits = exponentBits;
        MantissaBits = mantissaBits;
        Bias = bias;
        Specials = specials;
        int maxExponentField = (1 << exponentBits) - 1;
        int maxMantissa = (1 << mantissaBits) - 1;
        (int exponentField, int mantissa) = specials switch
        {
            SpecialValues.Ieee => (maxExponentField - 1, maxMantissa),
            SpecialValues.NaNOnly => (maxExponentField, maxMantissa - 1),
            _ => (maxExponentField, maxMantissa),
        };
        MaxExponent = exponentField - bias;
        MaxNormal = MathF.ScaleB(1f + mantissa / (float)(1 << mantissaBits), MaxExponent);
        MaxCode = (exponentField << mantissaBits) | mantissa;
        DecodeTable = new float[1 << Bits];
        for (int code = 0; code < DecodeTable.Length; code++)
        {
            DecodeTable[code] = Decode((byte)code);
        }
    }

    /// <summary>OCP FP8 E4M3 (E4M3FN): bias 7, max 448, no infinities, NaN = S.1111.111.</summary>
    public static MiniFloatCodec Fp8E4M3 { get; } = new("fp8-e4m3", 4, 3, 7, SpecialValues.NaNOnly);

    /// <summary>OCP FP8 E5M2: bias 15, max 57344, IEEE infinities and NaNs.</summary>
    public static MiniFloatCodec Fp8E5M2 { get; } = new("fp8-e5m2", 5, 2, 15, SpecialValues.Ieee);

    /// <summary>OCP FP6 E2M3: bias 1, max 7.5, no special values.</summary>
    public static MiniFloatCodec Fp6E2M3 { get; } = new("fp6-e2m3", 2, 3, 1, SpecialValues.None);

    /// <summary>OCP FP6 E3M2: bias 3, max 28, no special values.</summary>
    public static MiniFloatCodec Fp6E3M2 { get; } = new("fp6-e3m2", 3, 2, 3, SpecialValues.None);

    /// <summary>OCP FP4 E2M1: bias 1, values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}, no special values.</summary>
    public static MiniFloatCodec Fp4E2M1 { get; } = new("fp4-e2m1", 2, 1, 1, SpecialValues.None);

    /// <summary>A short identifier, e.g. "fp8-e4m3".</summary>
    public string Name { get; }

    /// <summary>Exponent bits.</summary>
    public int ExponentBits { get; }

    /// <summary>Mantissa (fraction) bits.</summary>
    public int MantissaBits { get; }

    /// <summary>Exponent bias.</summary>
    public int Bias { get; }

    /// <summary>How the top codes are used.</summary>
    public SpecialValues Specials { get; }

    /// <summary>Bits per code: 1 + exponent + mantissa.</summary>
    public int Bits => 1 + ExponentBits + MantissaBits;

    /// <summary>The largest finite magnitude (448 for E4M3, 57344 for E5M2, 7.5, 28, 6).</summary>
    public float MaxNormal { get; }

    /// <summary>The unbiased exponent of <see cref="MaxNormal"/> (the MX spec's emax: 8, 15, 2, 4, 2).</summary>
    public int MaxExponent { get; }

    /// <summary>The code of +<see cref="MaxNormal"/>.</summary>
    internal int MaxCode { get; }

    /// <summary>The value of every code, computed once (kernels index it instead of decoding).</summary>
    internal float[] DecodeTable { get; }

    /// <summary>The smallest normal exponent, 1 − bias.</summary>
    public int MinNormalExponent => 1 - Bias;

    private int SignBit => 1 << (ExponentBits + MantissaBits);

    /// <summary>The value of a code (its low <see cref="Bits"/> bits).</summary>
    public float Decode(byte code)
    {
        int exponentField = (code >> MantissaBits) & ((1 << ExponentBits) - 1);
        int mantissa = code & ((1 << MantissaBits) - 1);
        bool negative = (code & SignBit) != 0;
        int maxField = (1 << ExponentBits) - 1;
        float magnitude;
        if (Specials == SpecialValues.Ieee && exponentField == maxField)
        {
            magnitude = mantissa == 0 ? float.PositiveInfinity : float.NaN;
        }
        else if (Specials == SpecialValues.NaNOnly && exponentField == maxField && mantissa == (1 << MantissaBits) - 1)
        {
            magnitude = float.NaN;
        }
        else if (exponentField == 0)
        {
            magnitude = MathF.ScaleB(mantissa, MinNormalExponent - MantissaBits);
        }
        else
        {
            magnitude = MathF.ScaleB((1 << MantissaBits) + mantissa, exponentField - Bias - MantissaBits);
        }

        return negative ? -magnitude : magnitude;
    }

    /// <summary>
    /// Rounds <paramref name="x"/> to the nearest value of the format (ties to even), saturating or overflowing as
    /// asked. The result is exactly a value the format can hold, with the sign of <paramref name="x"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float RoundToGrid(float x, bool saturate = true)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint sign = bits & 0x8000_0000u;
        uint magnitudeBits = bits & 0x7FFF_FFFFu;
        if (magnitudeBits > 0x7F80_0000u)
        {
            return x;                                   // NaN stays NaN
        }

        // The step between neighbours is 2^(e − M), where e is x's binade, or the smallest normal exponent below it
        // (subnormals share the step of the smallest binade). Scaling by a power of two is exact, so one
        // round-half-even on the scaled value is exactly the format's rounding.
        float a = BitConverter.UInt32BitsToSingle(magnitudeBits);
        float rounded;
        if (a >= 2 * MaxNormal)
        {
            rounded = float.PositiveInfinity;           // far out of range (∞ included): overflow handling below
        }
        else
        {
            int exponent = Math.Max((int)(magnitudeBits >> 23) - 127, MinNormalExponent);
            rounded = MathF.Round(a * PowerOfTwo(MantissaBits - exponent), MidpointRounding.ToEven) * PowerOfTwo(exponent - MantissaBits);
        }

        if (rounded > MaxNormal)
        {
            rounded = saturate || Specials == SpecialValues.None
                ? MaxNormal
                : Specials == SpecialValues.Ieee ? float.PositiveInfinity : PositiveNaN;
        }

        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(rounded) | sign);
    }

    /// <summary>The code of a value already on the grid (as <see cref="RoundToGrid"/> returns).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte EncodeGridValue(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        int sign = (bits & 0x8000_0000u) != 0 ? SignBit : 0;
        uint magnitudeBits = bits & 0x7FFF_FFFFu;
        int maxField = (1 << ExponentBits) - 1;
        if (magnitudeBits > 0x7F80_0000u)
        {
            return (byte)(Specials switch
            {
                SpecialValues.NaNOnly => sign | SignBit - 1,                                 // S.1111.111
                SpecialValues.Ieee => sign | (maxField << MantissaBits) | (1 << (MantissaBits - 1)),   // quiet NaN
                _ => 0,
            });
        }

        if (magnitudeBits == 0x7F80_0000u)
        {
            return (byte)(sign | (maxField << MantissaBits));                              // ±∞ (E5M2 only)
        }

        if (magnitudeBits == 0)
        {
            return (byte)sign;
        }

        int exponent = (int)(magnitudeBits >> 23) - 127;
        if (exponent >= MinNormalExponent)
        {
            int mantissa = (int)(magnitudeBits >> (23 - MantissaBits)) & ((1 << MantissaBits) - 1);
            return (byte)(sign | ((exponent + Bias) << MantissaBits) | mantissa);
        }

        float a = BitConverter.UInt32BitsToSingle(magnitudeBits);
        return (byte)(sign | (int)(a * PowerOfTwo(MantissaBits - MinNormalExponent)));   // subnormal: exact integer
    }

    /// <summary>Rounds and encodes in one step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte Encode(float x, bool saturate = true) => EncodeGridValue(RoundToGrid(x, saturate));

    // float.NaN has its sign bit set; an overflow of a positive value must give a positive NaN code.
    private static float PositiveNaN => BitConverter.UInt32BitsToSingle(0x7FC0_0000u);

    /// <summary>2^k as a float, for k in [−126, 127], built from its bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float PowerOfTwo(int k) => BitConverter.Int32BitsToSingle((k + 127) << 23);

    /// <inheritdoc/>
    public bool Equals(MiniFloatCodec other) =>
        ExponentBits == other.ExponentBits && MantissaBits == other.MantissaBits && Bias == other.Bias && Specials == other.Specials;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is MiniFloatCodec other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(ExponentBits, MantissaBits, Bias, Specials);

    /// <inheritdoc/>
    public override string ToString() => Name;
}
