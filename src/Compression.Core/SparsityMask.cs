// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics;
using Compression.Tensors;

namespace Compression;

/// <summary>
/// Which weights of a Rows × Columns matrix are kept (true) or pruned (false), one bit each, row-major.
/// Immutable. Shared by the pruning algorithms and by every later stage that must keep pruned weights at zero.
/// </summary>
public sealed class SparsityMask
{
    private readonly ulong[] _words;

    private SparsityMask(int rows, int columns, ulong[] words)
    {
        Rows = rows;
        Columns = columns;
        _words = words;
        long kept = 0;
        foreach (ulong word in words)
        {
            kept += BitOperations.PopCount(word);
        }

        KeptCount = kept;
    }

    /// <summary>Rows of the matrix.</summary>
    public int Rows { get; }

    /// <summary>Columns of the matrix.</summary>
    public int Columns { get; }

    /// <summary>The number of kept weights.</summary>
    public long KeptCount { get; }

    /// <summary>The fraction of weights pruned, in [0, 1].</summary>
    public double Sparsity => Rows == 0 || Columns == 0 ? 0 : 1 - (double)KeptCount / ((long)Rows * Columns);

    /// <summary>Storage of the mask itself, one bit per weight.</summary>
    public long StorageBits => (long)Rows * Columns;

    /// <summary>Whether the weight at (<paramref name="row"/>, <paramref name="column"/>) is kept.</summary>
    public bool IsKept(int row, int column)
    {
        if ((uint)row >= (uint)Rows || (uint)column >= (uint)Columns)
        {
            throw new ArgumentOutOfRangeException(nameof(row), $"({row}, {column}) is outside [{Rows}, {Columns}].");
        }

        long index = (long)row * Columns + column;
        return (_words[index >> 6] & (1UL << (int)(index & 63))) != 0;
    }

    /// <summary>A mask keeping exactly the non-zero elements of a matrix.</summary>
    public static SparsityMask FromNonZeros(DenseTensor matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        return FromPredicate(matrix.Rows, matrix.Columns, matrix.Memory, static (values, i) => values.Span[(int)i] != 0);
    }

    /// <summary>A mask from a predicate over flat row-major indices.</summary>
    public static SparsityMask FromPredicate<TState>(int rows, int columns, TState state, Func<TState, long, bool> keep)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        ArgumentNullException.ThrowIfNull(keep);
        long count = (long)rows * columns;
        var words = new ulong[(count + 63) >> 6];
        for (long i = 0; i < count; i++)
        {
            if (keep(state, i))
            {
                words[i >> 6] |= 1UL << (int)(i & 63);
            }
        }

        return new SparsityMask(rows, columns, words);
    }

    /// <summary>Restores a mask from <see cref="ToBytes"/>.</summary>
    /// <exception cref="ArgumentException">The byte count does not match the shape, or bits past the end are set.</exception>
    public static SparsityMask FromBytes(int rows, int columns, ReadOnlySpan<byte> bytes)
    {
        long count = (long)rows * columns;
        if (bytes.Length != (count + 7) >> 3)
        {
            throw new ArgumentException($"A {rows}×{columns} mask needs {(count + 7) >> 3} bytes; {bytes.Length} given.", nameof(bytes));
        }

        var words = new ulong[(count + 63) >> 6];
        for (int i = 0; i < bytes.Length; i++)
        {
            words[i >> 3] |= (ulong)bytes[i] << (8 * (i & 7));
        }

        if (count % 64 != 0 && words.Length > 0 && (words[^1] >> (int)(count % 64)) != 0)
        {
            throw new ArgumentException("The mask has bits set past its last weight.", nameof(bytes));
        }

        return new SparsityMask(rows, columns, words);
    }

    /// <summary>The bits, little-endian within each byte, row-major, ⌈Rows·Columns/8⌉ bytes.</summary>
    public byte[] ToBytes()
    {
        long count = (long)Rows * Columns;
        var bytes = new byte[(count + 7) >> 3];
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(_words[i >> 3] >> (8 * (i & 7)));
        }

        return bytes;
    }

    /// <summary>Sets the pruned positions of <paramref name="matrix"/> (row-major, Rows × Columns) to zero.</summary>
    public void Apply(Span<float> matrix)
    {
        if (matrix.Length != (long)Rows * Columns)
        {
            throw new ArgumentException($"Expected {Rows}×{Columns} elements, got {matrix.Length}.", nameof(matrix));
        }

        for (int i = 0; i < matrix.Length; i++)
        {
            if ((_words[i >> 6] & (1UL << (i & 63))) == 0)
            {
                matrix[i] = 0;
            }
        }
    }
}
