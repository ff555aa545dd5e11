// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace Compression.Pruning;

/// <summary>
/// Collects kept positions of a Rows × Columns matrix into packed bits from several threads at once, then builds the
/// immutable <see cref="SparsityMask"/>. Rows rarely start on a word boundary, so neighbouring rows share a word:
/// words are merged with an atomic OR, which keeps row-parallel pruners free of locks.
/// </summary>
internal sealed class MaskBuilder
{
    private readonly int[] _words;

    public MaskBuilder(int rows, int columns)
    {
        Rows = rows;
        Columns = columns;
        _words = new int[((long)rows * columns + 31) >> 5];
    }

    public int Rows { get; }

    public int Columns { get; }

    /// <summary>Marks position <c>start + i</c> kept for every true <c>keep[i]</c>. Safe for concurrent calls.</summary>
    public void SetKept(long start, ReadOnlySpan<bool> keep)
    {
        int done = 0;
        while (done < keep.Length)
        {
            long position = start + done;
            int bit = (int)(position & 31);
            int run = Math.Min(32 - bit, keep.Length - done);
            int bits = 0;
            ReadOnlySpan<byte> flags = MemoryMarshal.AsBytes(keep.Slice(done, run));
            for (int i = 0; i < flags.Length; i++)
            {
                // A bool is stored as 0 or 1: shifting it in needs no branch, which random masks would mispredict.
                bits |= flags[i] << (bit + i);
            }

            if (bits != 0)
            {
                Interlocked.Or(ref _words[position >> 5], bits);
            }

            done += run;
        }
    }

    /// <summary>The mask (bit i of the packed bytes is flat index i, as <see cref="SparsityMask.FromBytes"/> reads them).</summary>
    public SparsityMask ToMask()
    {
        long count = (long)Rows * Columns;
        var bytes = new byte[(count + 7) >> 3];
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(_words[i >> 2] >> (8 * (i & 3)));
        }

        return SparsityMask.FromBytes(Rows, Columns, bytes);
    }
}
