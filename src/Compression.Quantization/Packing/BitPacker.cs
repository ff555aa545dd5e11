// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Compression.Quantization.Packing;

/// <summary>
/// Packs b-bit codes (b in 1..8) into bytes with no waste: a little-endian bitstream, code i occupying bits
/// [i·b, (i+1)·b) counted from the least significant bit of byte 0. For b = 4 that is two codes per byte, the first
/// in the low nibble; for b = 3 it is the layout GPTQ uses inside int32 words (a bitstream read as little-endian
/// words is the same bitstream). See docs/formats.md for worked examples.
/// </summary>
public static class BitPacker
{
    /// <summary>Bytes needed for <paramref name="count"/> codes of <paramref name="bits"/> bits.</summary>
    public static int PackedLength(int count, int bits)
    {
        CheckBits(bits);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return (int)(((long)count * bits + 7) / 8);
    }

    /// <summary>Packs the low <paramref name="bits"/> bits of each code. Unused high bits of the last byte are zero.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="PackedLength"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Pack(ReadOnlySpan<byte> codes, int bits, Span<byte> destination)
    {
        int length = PackedLength(codes.Length, bits);
        if (destination.Length < length)
        {
            throw new ArgumentException($"Destination holds {destination.Length} bytes; {length} are needed.", nameof(destination));
        }

        switch (bits)
        {
            case 8:
                codes.CopyTo(destination);
                return;
            case 4:
                Pack4(codes, destination);
                return;
            case 2:
                Pack2(codes, destination);
                return;
        }

        destination[..length].Clear();
        int mask = (1 << bits) - 1;
        long bit = 0;
        for (int i = 0; i < codes.Length; i++, bit += bits)
        {
            int value = codes[i] & mask;
            int index = (int)(bit >> 3), shift = (int)(bit & 7);
            destination[index] |= (byte)(value << shift);
            if (shift + bits > 8)
            {
                destination[index + 1] |= (byte)(value >> (8 - shift));
            }
        }
    }

    /// <summary>Unpacks <paramref name="destination"/>.Length codes.</summary>
    /// <exception cref="ArgumentException"><paramref name="packed"/> is too short for that many codes.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Unpack(ReadOnlySpan<byte> packed, int bits, Span<byte> destination)
    {
        int length = PackedLength(destination.Length, bits);
        if (packed.Length < length)
        {
            throw new ArgumentException($"Packed data holds {packed.Length} bytes; {length} are needed for {destination.Length} codes.", nameof(packed));
        }

        switch (bits)
        {
            case 8:
                packed[..destination.Length].CopyTo(destination);
                return;
            case 4:
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = (byte)((packed[i >> 1] >> ((i & 1) << 2)) & 0xF);
                }

                return;
        }

        int mask = (1 << bits) - 1;
        long bit = 0;
        for (int i = 0; i < destination.Length; i++, bit += bits)
        {
            int index = (int)(bit >> 3), shift = (int)(bit & 7);
            int value = packed[index] >> shift;
            if (shift + bits > 8)
            {
                value |= packed[index + 1] << (8 - shift);
            }

            destination[i] = (byte)(value & mask);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Pack4(ReadOnlySpan<byte> codes, Span<byte> destination)
    {
        int pairs = codes.Length / 2;
        int start = 0;
        if (Vector256.IsHardwareAccelerated && pairs >= 32)
        {
            // Read the codes as 16-bit pairs (even code low, odd code high): byte = (lo & 0xF) | (hi << 4).
            ref byte source = ref MemoryMarshal.GetReference(codes);
            ref byte target = ref MemoryMarshal.GetReference(destination);
            Vector256<ushort> low = Vector256.Create((ushort)0x000F), high = Vector256.Create((ushort)0x00F0);
            for (; start <= pairs - 32; start += 32)
            {
                Vector256<ushort> a = Vector256.LoadUnsafe(ref source, (nuint)(2 * start)).AsUInt16();
                Vector256<ushort> b = Vector256.LoadUnsafe(ref source, (nuint)(2 * start + 32)).AsUInt16();
                Vector256<ushort> pa = (a & low) | ((a >>> 4) & high);
                Vector256<ushort> pb = (b & low) | ((b >>> 4) & high);
                Vector256.Narrow(pa, pb).StoreUnsafe(ref target, (nuint)start);
            }
        }

        for (int i = start; i < pairs; i++)
        {
            destination[i] = (byte)((codes[2 * i] & 0xF) | ((codes[2 * i + 1] & 0xF) << 4));
        }

        if ((codes.Length & 1) != 0)
        {
            destination[pairs] = (byte)(codes[^1] & 0xF);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Pack2(ReadOnlySpan<byte> codes, Span<byte> destination)
    {
        int length = PackedLength(codes.Length, 2);
        for (int i = 0; i < length; i++)
        {
            int value = 0;
            for (int k = 0; k < 4 && 4 * i + k < codes.Length; k++)
            {
                value |= (codes[4 * i + k] & 3) << (2 * k);
            }

            destination[i] = (byte)value;
        }
    }

    private static void CheckBits(int bits)
    {
        if (bits is < 1 or > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Codes are 1 to 8 bits wide.");
        }
    }
}
