// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;

namespace Compression.Quantization.Packing;

/// <summary>
/// Packs ternary codes five to a byte (3⁵ = 243 ≤ 256, so 1.6 bits per weight): byte = Σ tᵢ·3ⁱ for i = 0..4, where
/// a trit t = q + 1 ∈ {0, 1, 2} encodes q ∈ {−1, 0, +1}. A short last group is padded with t = 0 digits.
/// </summary>
public static class TritPacker
{
    /// <summary>Bytes needed for <paramref name="count"/> trits.</summary>
    public static int PackedLength(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return (count + 4) / 5;
    }

    /// <summary>Packs trits (each 0, 1 or 2).</summary>
    /// <exception cref="ArgumentException">A trit exceeds 2, or <paramref name="destination"/> is too short.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Pack(ReadOnlySpan<byte> trits, Span<byte> destination)
    {
        int length = PackedLength(trits.Length);
        if (destination.Length < length)
        {
            throw new ArgumentException($"Destination holds {destination.Length} bytes; {length} are needed.", nameof(destination));
        }

        for (int b = 0; b < length; b++)
        {
            int value = 0;
            for (int k = 4; k >= 0; k--)
            {
                int i = 5 * b + k;
                int trit = i < trits.Length ? trits[i] : 0;
                if (trit > 2)
                {
                    throw new ArgumentException($"Trit {i} is {trit}; trits are 0, 1 or 2.", nameof(trits));
                }

                value = value * 3 + trit;
            }

            destination[b] = (byte)value;
        }
    }

    /// <summary>Unpacks <paramref name="destination"/>.Length trits.</summary>
    /// <exception cref="ArgumentException"><paramref name="packed"/> is too short, or holds a byte above 242.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Unpack(ReadOnlySpan<byte> packed, Span<byte> destination)
    {
        int length = PackedLength(destination.Length);
        if (packed.Length < length)
        {
            throw new ArgumentException($"Packed data holds {packed.Length} bytes; {length} are needed.", nameof(packed));
        }

        for (int b = 0; b < length; b++)
        {
            int value = packed[b];
            if (value > 242)
            {
                throw new ArgumentException($"Byte {b} is {value}; five trits never exceed 242.", nameof(packed));
            }

            for (int k = 0; k < 5; k++)
            {
                int i = 5 * b + k;
                if (i < destination.Length)
                {
                    destination[i] = (byte)(value % 3);
                }

                value /= 3;
            }
        }
    }
}
