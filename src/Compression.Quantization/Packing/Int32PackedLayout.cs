// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;

namespace Compression.Quantization.Packing;

/// <summary>
/// The "pack-quantized" layout of GPTQ and compressed-tensors checkpoints: each row of b-bit codes packed into int32
/// words, 32/b codes per word along the input dimension, code j of a word in bits [j·b, (j+1)·b). Rows are padded with
/// zero codes to a whole number of words.
/// </summary>
public static class Int32PackedLayout
{
    /// <summary>Words per row for <paramref name="columns"/> codes of <paramref name="bits"/> bits (2, 4 or 8).</summary>
    public static int WordsPerRow(int columns, int bits)
    {
        CheckBits(bits);
        int perWord = 32 / bits;
        return (columns + perWord - 1) / perWord;
    }

    /// <summary>Packs a rows × columns matrix of codes (row-major) into rows × <see cref="WordsPerRow"/> int32 words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int[] Pack(ReadOnlySpan<byte> codes, int rows, int columns, int bits)
    {
        int words = WordsPerRow(columns, bits);
        if (codes.Length != (long)rows * columns)
        {
            throw new ArgumentException($"Expected {rows}×{columns} codes, got {codes.Length}.", nameof(codes));
        }

        int perWord = 32 / bits;
        uint mask = (1u << bits) - 1;
        var packed = new int[rows * words];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                packed[r * words + c / perWord] |= (int)((codes[r * columns + c] & mask) << (bits * (c % perWord)));
            }
        }

        return packed;
    }

    /// <summary>Unpacks rows × columns codes from <see cref="Pack"/>'s layout.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static byte[] Unpack(ReadOnlySpan<int> packed, int rows, int columns, int bits)
    {
        int words = WordsPerRow(columns, bits);
        if (packed.Length != (long)rows * words)
        {
            throw new ArgumentException($"Expected {rows}×{words} words, got {packed.Length}.", nameof(packed));
        }

        int perWord = 32 / bits;
        uint mask = (1u << bits) - 1;
        var codes = new byte[rows * columns];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                codes[r * columns + c] = (byte)(((uint)packed[r * words + c / perWord] >> (bits * (c % perWord))) & mask);
            }
        }

        return codes;
    }

    private static void CheckBits(int bits)
    {
        if (bits is not (2 or 4 or 8))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "The int32 layout packs 2-, 4- or 8-bit codes.");
        }
    }
}
