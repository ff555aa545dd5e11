// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Quantization.Tests.Gguf;

/// <summary>
/// An independent scalar statement of ggml's reference block quantizers (<c>quantize_row_q8_0_ref</c>,
/// <c>quantize_row_q4_0_ref</c>) and their dequantizers, written from the C reference's arithmetic: float32 operations
/// one at a time, float16 rounding by bit manipulation (not <see cref="Half"/>), codes computed first and packed after.
/// </summary>
internal static class GgmlReference
{
    /// <summary>float32 → float16 bits, round to nearest even, overflow to infinity, subnormals kept (IEEE 754).</summary>
    public static ushort ToHalfBits(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint sign = (bits >> 16) & 0x8000;
        int exponent = (int)((bits >> 23) & 0xFF) - 127 + 15;
        uint mantissa = bits & 0x7FFFFF;
        if (((bits >> 23) & 0xFF) == 0xFF)
        {
            return (ushort)(sign | 0x7C00 | (mantissa != 0 ? 0x200u : 0));
        }

        if (exponent >= 31)
        {
            return (ushort)(sign | 0x7C00);
        }

        if (exponent <= 0)
        {
            if (exponent < -10)
            {
                return (ushort)sign;            // below half the smallest subnormal: ±0
            }

            // Subnormal: shift the mantissa with its implicit bit, then round to nearest even on the dropped bits.
            uint full = mantissa | 0x800000;
            int shift = 14 - exponent;
            uint kept = full >> shift, dropped = full & ((1u << shift) - 1), halfway = 1u << (shift - 1);
            if (dropped > halfway || (dropped == halfway && (kept & 1) == 1))
            {
                kept++;
            }

            return (ushort)(sign | kept);
        }

        uint result = sign | ((uint)exponent << 10) | (mantissa >> 13);
        uint rest = mantissa & 0x1FFF;
        if (rest > 0x1000 || (rest == 0x1000 && (result & 1) == 1))
        {
            result++;                            // may carry into the exponent, up to infinity: still correct
        }

        return (ushort)result;
    }

    /// <summary>float16 bits → float32 (exact).</summary>
    public static float FromHalfBits(ushort h)
    {
        int sign = (h & 0x8000) != 0 ? -1 : 1;
        int exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
        if (exponent == 0x1F)
        {
            return mantissa != 0 ? float.NaN : sign * float.PositiveInfinity;
        }

        // Both cases are exact in float64 and then in float32: at most 11 significant bits.
        double magnitude = exponent == 0 ? mantissa * Math.Pow(2, -24) : (1024 + mantissa) * Math.Pow(2, exponent - 25);
        return sign * (float)magnitude;
    }

    public static byte[] QuantizeQ8_0(float[] x)
    {
        var output = new List<byte>();
        for (int start = 0; start < x.Length; start += 32)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++)
            {
                float a = Math.Abs(x[start + j]);
                if (a > amax)
                {
                    amax = a;
                }
            }

            float d = amax / 127;
            float id = d == 0 ? 0 : 1 / d;
            ushort dh = ToHalfBits(d);
            output.Add((byte)dh);
            output.Add((byte)(dh >> 8));
            for (int j = 0; j < 32; j++)
            {
                float v = x[start + j] * id;
                // roundf: halves away from zero. |v| + 0.5 is exact in float64 (float32 |v| < 2^24), not in float32.
                double exact = Math.Floor(Math.Abs((double)v) + 0.5);
                int q = (int)exact * (v < 0 ? -1 : 1);
                output.Add((byte)(sbyte)q);
            }
        }

        return [.. output];
    }

    public static byte[] QuantizeQ4_0(float[] x)
    {
        var output = new List<byte>();
        for (int start = 0; start < x.Length; start += 32)
        {
            float amax = 0, max = 0;
            for (int j = 0; j < 32; j++)
            {
                if (Math.Abs(x[start + j]) > amax)
                {
                    amax = Math.Abs(x[start + j]);
                    max = x[start + j];
                }
            }

            float d = max / -8;
            float id = d == 0 ? 0 : 1 / d;
            var codes = new int[32];
            for (int j = 0; j < 32; j++)
            {
                float scaled = x[start + j] * id;
                float shifted = scaled + 8.5f;
                codes[j] = Math.Min(15, (int)Math.Truncate(shifted));
            }

            ushort dh = ToHalfBits(d);
            output.Add((byte)dh);
            output.Add((byte)(dh >> 8));
            for (int j = 0; j < 16; j++)
            {
                output.Add((byte)(codes[j] + codes[j + 16] * 16));
            }
        }

        return [.. output];
    }

    public static float[] Dequantize(ReadOnlySpan<byte> data, uint type, long count)
    {
        var y = new float[count];
        for (long block = 0; block < count / (type is 0 or 1 ? 1 : 32); block++)
        {
            switch (type)
            {
                case 0:
                    y[block] = BitConverter.ToSingle(data.Slice((int)block * 4, 4));
                    break;
                case 1:
                    y[block] = FromHalfBits(BitConverter.ToUInt16(data.Slice((int)block * 2, 2)));
                    break;
                case 8:
                {
                    ReadOnlySpan<byte> b = data.Slice((int)block * 34, 34);
                    float d = FromHalfBits((ushort)(b[0] | b[1] << 8));
                    for (int j = 0; j < 32; j++)
                    {
                        y[block * 32 + j] = (sbyte)b[2 + j] * d;
                    }

                    break;
                }

                case 2:
                {
                    ReadOnlySpan<byte> b = data.Slice((int)block * 18, 18);
                    float d = FromHalfBits((ushort)(b[0] | b[1] << 8));
                    for (int j = 0; j < 32; j++)
                    {
                        int nibble = j < 16 ? b[2 + j] % 16 : b[2 + j - 16] / 16;
                        y[block * 32 + j] = (nibble - 8) * d;
                    }

                    break;
                }

                default:
                    throw new NotSupportedException($"reference dequantization of type {type}");
            }
        }

        return y;
    }
}
