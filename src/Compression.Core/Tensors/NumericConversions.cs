// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Compression.Tensors;

/// <summary>
/// Span conversions between float32 and the storage types found in checkpoints: FP16, BF16, FP8 (E4M3FN, E5M2),
/// FP64 and integers. The caller allocates; nothing here allocates.
/// </summary>
/// <remarks>
/// Widening conversions (BF16, FP16, FP8 to float32) are exact. Narrowing conversions round to nearest, ties to even,
/// as IEEE 754 narrowing does; NaN stays NaN. FP8 encoding with scaling and saturation belongs to the quantization
/// package; Core only decodes FP8 so that FP8 checkpoints can be read.
/// </remarks>
public static class NumericConversions
{
    private static readonly float[] s_float8E4M3Table = BuildTable(DecodeFloat8E4M3);
    private static readonly float[] s_float8E5M2Table = BuildTable(DecodeFloat8E5M2);

    /// <summary>Widens BF16 values to float32, exactly.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertToSingle(ReadOnlySpan<BFloat16> source, Span<float> destination)
    {
        CheckDestination(source.Length, destination.Length);
        ReadOnlySpan<ushort> bits = MemoryMarshal.Cast<BFloat16, ushort>(source);
        Span<uint> result = MemoryMarshal.Cast<float, uint>(destination);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= bits.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                (Vector256<uint> lower, Vector256<uint> upper) = Vector256.Widen(Vector256.Create(bits.Slice(i, Vector256<ushort>.Count)));
                (lower << 16).CopyTo(result.Slice(i));
                (upper << 16).CopyTo(result.Slice(i + Vector256<uint>.Count));
            }
        }

        for (; i < bits.Length; i++)
        {
            result[i] = (uint)bits[i] << 16;
        }
    }

    /// <summary>Narrows float32 values to BF16 with round-to-nearest-even; NaN becomes a quiet NaN of the same sign.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertToBFloat16(ReadOnlySpan<float> source, Span<BFloat16> destination)
    {
        CheckDestination(source.Length, destination.Length);
        ReadOnlySpan<uint> bits = MemoryMarshal.Cast<float, uint>(source);
        Span<ushort> result = MemoryMarshal.Cast<BFloat16, ushort>(destination);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= bits.Length - 2 * Vector256<uint>.Count; i += 2 * Vector256<uint>.Count)
            {
                Vector256<uint> lower = RoundToBFloat16(Vector256.Create(bits.Slice(i, Vector256<uint>.Count)));
                Vector256<uint> upper = RoundToBFloat16(Vector256.Create(bits.Slice(i + Vector256<uint>.Count, Vector256<uint>.Count)));
                Vector256.Narrow(lower, upper).CopyTo(result.Slice(i));
            }
        }

        // The scalar tail uses the same formula as the vector lanes, so every length gives the same bits.
        for (; i < bits.Length; i++)
        {
            result[i] = SingleToBFloat16Bits(BitConverter.UInt32BitsToSingle(bits[i]));
        }
    }

    /// <summary>Widens FP16 values to float32, exactly.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertToSingle(ReadOnlySpan<Half> source, Span<float> destination)
    {
        CheckDestination(source.Length, destination.Length);
        TensorPrimitives.ConvertToSingle(source, destination);
    }

    /// <summary>Narrows float32 values to FP16 (IEEE round-to-nearest-even; overflow gives infinity).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertToHalf(ReadOnlySpan<float> source, Span<Half> destination)
    {
        CheckDestination(source.Length, destination.Length);
        TensorPrimitives.ConvertToHalf(source, destination);
    }

    /// <summary>Decodes OCP FP8 E4M3 ("E4M3FN": no infinities, max 448, NaN = S.1111.111) codes to float32.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertFloat8E4M3ToSingle(ReadOnlySpan<byte> source, Span<float> destination) =>
        Lookup(source, s_float8E4M3Table, destination);

    /// <summary>Decodes OCP FP8 E5M2 (IEEE-like: infinities and NaNs, max 57344) codes to float32.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertFloat8E5M2ToSingle(ReadOnlySpan<byte> source, Span<float> destination) =>
        Lookup(source, s_float8E5M2Table, destination);

    /// <summary>Converts any primitive number span to float32 (round to nearest for wide integers and doubles).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertToSingle<T>(ReadOnlySpan<T> source, Span<float> destination)
        where T : unmanaged, System.Numerics.INumberBase<T>
    {
        CheckDestination(source.Length, destination.Length);
        if (typeof(T) == typeof(float))
        {
            MemoryMarshal.Cast<T, float>(source).CopyTo(destination);
            return;
        }

        for (int i = 0; i < source.Length; i++)
        {
            destination[i] = float.CreateTruncating(source[i]);
        }
    }

    /// <summary>The value of one OCP FP8 E4M3FN code.</summary>
    public static float DecodeFloat8E4M3(byte code)
    {
        int exponent = (code >> 3) & 0xF;
        int mantissa = code & 0x7;
        float magnitude;
        if (exponent == 0xF && mantissa == 0x7)
        {
            magnitude = float.NaN;
        }
        else if (exponent == 0)
        {
            magnitude = mantissa * (1f / 512f);                  // subnormal: m/8 · 2^(1-7)
        }
        else
        {
            magnitude = (1f + mantissa / 8f) * MathF.ScaleB(1f, exponent - 7);
        }

        return (code & 0x80) != 0 ? -magnitude : magnitude;
    }

    /// <summary>The value of one OCP FP8 E5M2 code (the upper byte of the FP16 with the same value).</summary>
    public static float DecodeFloat8E5M2(byte code) => (float)BitConverter.UInt16BitsToHalf((ushort)(code << 8));

    /// <summary>The BF16 bit pattern nearest to <paramref name="value"/>, ties to even; NaN becomes a quiet NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort SingleToBFloat16Bits(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
        {
            return (ushort)((bits >> 16) | 0x0040);              // keep sign and payload top, force quiet
        }

        // Adding 0x7FFF plus the lowest kept bit rounds half to even; a carry into the exponent is the correct
        // rounding up to the next binade (or to infinity above the largest finite BF16).
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    private static Vector256<uint> RoundToBFloat16(Vector256<uint> bits)
    {
        Vector256<uint> isNaN = Vector256.GreaterThan(bits & Vector256.Create(0x7FFF_FFFFu), Vector256.Create(0x7F80_0000u));
        Vector256<uint> rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        Vector256<uint> quietNaN = (bits >> 16) | Vector256.Create(0x0040u);
        return Vector256.ConditionalSelect(isNaN, quietNaN, rounded);
    }

    private static void Lookup(ReadOnlySpan<byte> source, float[] table, Span<float> destination)
    {
        CheckDestination(source.Length, destination.Length);
        ref float tableRef = ref MemoryMarshal.GetArrayDataReference(table);
        for (int i = 0; i < source.Length; i++)
        {
            destination[i] = Unsafe.Add(ref tableRef, source[i]);
        }
    }

    private static float[] BuildTable(Func<byte, float> decode)
    {
        var table = new float[256];
        for (int code = 0; code < 256; code++)
        {
            table[code] = decode((byte)code);
        }

        return table;
    }

    private static void CheckDestination(int needed, int actual)
    {
        if (actual < needed)
        {
            ThrowHelper.ThrowDestinationTooShort("destination", needed, actual);
        }
    }
}
