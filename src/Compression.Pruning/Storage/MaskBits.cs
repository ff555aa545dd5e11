// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Tensors;

namespace Compression.Pruning.Storage;

/// <summary>
/// Row-major bit sets in <see cref="SparsityMask.ToBytes"/> order (little-endian within each byte): the fast way
/// to walk a mask or to build one position by position.
/// </summary>
internal static class MaskBits
{
    public static bool IsSet(byte[] bits, long index) => (bits[index >> 3] & (1 << (int)(index & 7))) != 0;

    public static void Set(byte[] bits, long index) => bits[index >> 3] |= (byte)(1 << (int)(index & 7));

    public static byte[] Allocate(int rows, int columns) => new byte[((long)rows * columns + 7) >> 3];

    /// <summary>
    /// The positions that are stored when "zero" means the bits of +0: −0 and NaN count as stored, so that
    /// decompression gives the matrix back bit for bit.
    /// </summary>
    public static byte[] NonZero(DenseTensor matrix)
    {
        byte[] bits = Allocate(matrix.Rows, matrix.Columns);
        ReadOnlySpan<float> values = matrix.Span;
        for (int i = 0; i < values.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(values[i]) != 0)
            {
                Set(bits, i);
            }
        }

        return bits;
    }

    public static DenseTensor CheckMatrix(DenseTensor matrix, string name)
    {
        ArgumentNullException.ThrowIfNull(matrix, name);
        if (matrix.Rank != 2)
        {
            throw new ArgumentException($"Expected a matrix (rank 2), got rank {matrix.Rank}.", name);
        }

        return matrix;
    }
}
