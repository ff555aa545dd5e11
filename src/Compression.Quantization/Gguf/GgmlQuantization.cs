// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers.Binary;
using System.Threading.Tasks;

namespace Compression.Quantization.Gguf;

/// <summary>
/// ggml's legacy block formats (Q8_0, Q4_0, Q4_1, Q5_0) and its float types, encoded exactly as ggml's reference
/// quantizers (<c>quantize_row_*_ref</c> in ggml-quants.c) encode them, so that a file written here holds the bytes
/// llama.cpp's own tools would write for the same float32 weights.
/// </summary>
/// <remarks>
/// <para>Every block holds 32 consecutive values of a row. The rules, with d the block scale (stored as float16, rounded
/// to nearest even) and id = 1/d computed in float32 from the <em>unrounded</em> d (0 when d is 0):</para>
/// <list type="bullet">
/// <item><b>Q8_0</b>: d = amax/127; q = round-half-away-from-zero(x·id) as int8. Bytes: d, then q₀…q₃₁.</item>
/// <item><b>Q4_0</b>: m = the first value of largest magnitude (sign kept), d = m/−8;
/// c = min(15, trunc(x·id + 8.5)). Bytes: d, then 16 bytes whose low nibbles are c₀…c₁₅ and high nibbles c₁₆…c₃₁.</item>
/// <item><b>Q4_1</b>: d = (max − min)/15, m = min (float16); c = min(15, trunc((x − min)·id + 0.5)). Bytes: d, m,
/// then the nibbles as Q4_0.</item>
/// <item><b>Q5_0</b>: d = m/−16 with m as Q4_0; c = min(31, trunc(x·id + 16.5)). Bytes: d, a little-endian uint32
/// whose bit j is the fifth bit of c_j, then the low four bits as Q4_0's nibbles.</item>
/// </list>
/// <para>Each product and sum is a separate float32 operation (the reference's C expression without contraction). A
/// llama.cpp build that fuses <c>x·id + 8.5</c> into one FMA can differ from this in a code when x·id + 8.5 lies within
/// one float32 rounding of an integer; gguf-py's NumPy Q4_0/Q5_0 quantizers compute that sum in float64 for the same
/// reason. docs/gguf.md records how often that happens on the shared models.</para>
/// <para>Non-finite weights are rejected: ggml would write a NaN scale for the whole block.</para>
/// </remarks>
public static class GgmlQuantization
{
    /// <summary>Values per block of the block formats.</summary>
    public const int BlockValues = 32;

    /// <summary>Values per block of <paramref name="type"/> (1 for F32 and F16).</summary>
    public static int BlockSize(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 ? 1 : BlockValues;

    /// <summary>Bytes per block of <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a <see cref="GgmlType"/> value.</exception>
    public static int BlockBytes(GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 => 2,
        GgmlType.Q8_0 => 34,
        GgmlType.Q4_0 => 18,
        GgmlType.Q4_1 => 20,
        GgmlType.Q5_0 => 22,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a supported ggml type."),
    };

    /// <summary>Bytes of <paramref name="count"/> values of <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentException">The count is negative or not a whole number of blocks.</exception>
    public static long ByteCount(GgmlType type, long count)
    {
        int block = BlockSize(type);
        if (count < 0 || count % block != 0)
        {
            throw new ArgumentException($"{count} values are not a whole number of {type} blocks of {block}.", nameof(count));
        }

        return checked(count / block * BlockBytes(type));
    }

    /// <summary>Encodes <paramref name="values"/> (a whole number of blocks; row-major, blocks never cross rows when rows
    /// are whole numbers of blocks) as <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentException">The length is not a whole number of blocks, or a value is NaN or infinite.</exception>
    public static byte[] Quantize(ReadOnlySpan<float> values, GgmlType type)
    {
        if (values.Length % BlockSize(type) != 0)
        {
            throw new ArgumentException($"{values.Length} values are not a whole number of {type} blocks of {BlockSize(type)}.", nameof(values));
        }

        var output = new byte[ByteCount(type, values.Length)];
        Quantize(values, type, output);
        return output;
    }

    /// <summary>Encodes <paramref name="values"/> as <paramref name="type"/> into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException">The lengths do not agree, or a value is NaN or infinite.</exception>
    public static void Quantize(ReadOnlySpan<float> values, GgmlType type, Span<byte> destination)
    {
        if (values.Length % BlockSize(type) != 0)
        {
            throw new ArgumentException($"{values.Length} values are not a whole number of {type} blocks of {BlockSize(type)}.", nameof(values));
        }

        long bytes = ByteCount(type, values.Length);
        if (destination.Length != bytes)
        {
            throw new ArgumentException($"{values.Length} {type} values take {bytes} bytes, not {destination.Length}.", nameof(destination));
        }

        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                throw new ArgumentException($"Value {i} is {values[i]}; ggml blocks need finite weights.", nameof(values));
            }
        }

        int blockBytes = BlockBytes(type), blockSize = BlockSize(type);
        int blocks = values.Length / blockSize;
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<float> x = values.Slice(b * blockSize, blockSize);
            Span<byte> y = destination.Slice(b * blockBytes, blockBytes);
            switch (type)
            {
                case GgmlType.F32: BinaryPrimitives.WriteSingleLittleEndian(y, x[0]); break;
                case GgmlType.F16: BinaryPrimitives.WriteHalfLittleEndian(y, (Half)x[0]); break;
                case GgmlType.Q8_0: Q8_0(x, y); break;
                case GgmlType.Q4_0: Q4_0(x, y); break;
                case GgmlType.Q4_1: Q4_1(x, y); break;
                case GgmlType.Q5_0: Q5_0(x, y); break;
            }
        }
    }

    /// <summary>Decodes <paramref name="data"/> of <paramref name="type"/> into <paramref name="destination"/>
    /// (ggml's <c>dequantize_row_*</c>: code times the float16 scale, in float32).</summary>
    /// <exception cref="ArgumentException">The lengths do not agree.</exception>
    public static void Dequantize(ReadOnlySpan<byte> data, GgmlType type, Span<float> destination)
    {
        long bytes = ByteCount(type, destination.Length);
        if (data.Length != bytes)
        {
            throw new ArgumentException($"{destination.Length} {type} values take {bytes} bytes, not {data.Length}.", nameof(data));
        }

        int blockBytes = BlockBytes(type), blockSize = BlockSize(type);
        int blocks = destination.Length / blockSize;
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<byte> x = data.Slice(b * blockBytes, blockBytes);
            Span<float> y = destination.Slice(b * blockSize, blockSize);
            switch (type)
            {
                case GgmlType.F32: y[0] = BinaryPrimitives.ReadSingleLittleEndian(x); break;
                case GgmlType.F16: y[0] = (float)BinaryPrimitives.ReadHalfLittleEndian(x); break;
                case GgmlType.Q8_0:
                {
                    float d = Scale(x);
                    for (int j = 0; j < BlockValues; j++)
                    {
                        y[j] = (sbyte)x[2 + j] * d;
                    }

                    break;
                }

                case GgmlType.Q4_0:
                case GgmlType.Q4_1:
                {
                    float d = Scale(x);
                    bool offset = type == GgmlType.Q4_1;
                    float m = offset ? (float)BinaryPrimitives.ReadHalfLittleEndian(x[2..]) : 0f;
                    ReadOnlySpan<byte> qs = x[(offset ? 4 : 2)..];
                    for (int j = 0; j < BlockValues / 2; j++)
                    {
                        int lo = qs[j] & 0xF, hi = qs[j] >> 4;
                        y[j] = offset ? lo * d + m : (lo - 8) * d;
                        y[j + BlockValues / 2] = offset ? hi * d + m : (hi - 8) * d;
                    }

                    break;
                }

                case GgmlType.Q5_0:
                {
                    float d = Scale(x);
                    uint high = BinaryPrimitives.ReadUInt32LittleEndian(x[2..]);
                    ReadOnlySpan<byte> qs = x[6..];
                    for (int j = 0; j < BlockValues / 2; j++)
                    {
                        int lo = (qs[j] & 0xF) | (int)((high >> j) & 1) << 4;
                        int hi = (qs[j] >> 4) | (int)((high >> (j + 16)) & 1) << 4;
                        y[j] = (lo - 16) * d;
                        y[j + BlockValues / 2] = (hi - 16) * d;
                    }

                    break;
                }
            }
        }
    }

    /// <summary>Decodes <paramref name="data"/> (<paramref name="count"/> values of <paramref name="type"/>).</summary>
    /// <exception cref="ArgumentException">The lengths do not agree.</exception>
    public static float[] Dequantize(ReadOnlySpan<byte> data, GgmlType type, int count)
    {
        var values = new float[count];
        Dequantize(data, type, values);
        return values;
    }

    /// <summary>Encodes a row-major matrix row block by row block, rows in parallel (each row's bytes depend on it alone).</summary>
    internal static byte[] QuantizeRows(float[] values, int rows, int columns, GgmlType type)
    {
        long rowBytes = ByteCount(type, columns);
        var output = new byte[checked(rows * rowBytes)];
        Parallel.For(0, rows, r => Quantize(values.AsSpan(r * columns, columns), type, output.AsSpan((int)(r * rowBytes), (int)rowBytes)));
        return output;
    }

    private static float Scale(ReadOnlySpan<byte> block) => (float)BinaryPrimitives.ReadHalfLittleEndian(block);

    private static void Q8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0f;
        foreach (float v in x)
        {
            amax = MathF.Max(amax, MathF.Abs(v));
        }

        float d = amax / 127f;
        float id = d != 0f ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
        for (int j = 0; j < BlockValues; j++)
        {
            // C's roundf: halves away from zero (not the IEEE default of ties to even).
            y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>The first value of largest magnitude, sign kept (0 for an all-zero block): the reference keeps the
    /// first on ties because it replaces only on a strictly larger magnitude.</summary>
    private static float SignedMax(ReadOnlySpan<float> x)
    {
        float amax = 0f, max = 0f;
        foreach (float v in x)
        {
            if (amax < MathF.Abs(v))
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }

        return max;
    }

    private static void Q4_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        // d = max / −8 maps the extreme value to code 0 exactly; an all-zero block gets d = −0 (bits 0x8000), as ggml's.
        float d = SignedMax(x) / -8f;
        float id = d != 0f ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
        for (int j = 0; j < BlockValues / 2; j++)
        {
            y[2 + j] = (byte)(Code(x[j] * id + 8.5f, 15) | Code(x[j + BlockValues / 2] * id + 8.5f, 15) << 4);
        }
    }

    private static void Q4_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        float min = float.MaxValue, max = -float.MaxValue;
        foreach (float v in x)
        {
            min = v < min ? v : min;
            max = v > max ? v : max;
        }

        float d = (max - min) / 15f;
        float id = d != 0f ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
        BinaryPrimitives.WriteHalfLittleEndian(y[2..], (Half)min);
        for (int j = 0; j < BlockValues / 2; j++)
        {
            y[4 + j] = (byte)(Code((x[j] - min) * id + 0.5f, 15) | Code((x[j + BlockValues / 2] - min) * id + 0.5f, 15) << 4);
        }
    }

    private static void Q5_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float d = SignedMax(x) / -16f;
        float id = d != 0f ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
        uint high = 0;
        for (int j = 0; j < BlockValues / 2; j++)
        {
            int lo = Code(x[j] * id + 16.5f, 31), hi = Code(x[j + BlockValues / 2] * id + 16.5f, 31);
            y[6 + j] = (byte)((lo & 0xF) | (hi & 0xF) << 4);
            high |= (uint)(lo >> 4) << j;
            high |= (uint)(hi >> 4) << (j + BlockValues / 2);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(y[2..], high);
    }

    /// <summary>The reference's <c>MIN(top, (int8_t)v)</c>: truncation toward zero, then the upper clamp. v is never
    /// below −0.5 here (|x·id| ≤ 8 or 16 by construction), so no lower clamp is needed.</summary>
    private static int Code(float v, int top) => Math.Min(top, (int)v);
}
