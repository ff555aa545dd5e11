// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers;
using System.Threading;

namespace Compression.Pruning;

/// <summary>
/// N:M selection on a score matrix: in every group of M consecutive columns of a row the N highest |scores| are kept,
/// ties kept lower column first. Shared by <see cref="NofMPruner"/> (scores = weights) and <see cref="WandaPruner"/>.
/// </summary>
internal static class NofMSelection
{
    /// <summary>The N:M mask; <paramref name="columns"/> is a multiple of <paramref name="m"/> (checked by the caller).</summary>
    public static SparsityMask Prune(ReadOnlyMemory<float> scores, int rows, int columns, int n, int m, CancellationToken cancellationToken)
    {
        var mask = new MaskBuilder(rows, columns);
        RowParallel.For(rows, columns, cancellationToken, (first, count) =>
        {
            bool[] keep = ArrayPool<bool>.Shared.Rent(columns);
            Span<ulong> ranks = stackalloc ulong[m];
            try
            {
                for (int r = first; r < first + count; r++)
                {
                    ReadOnlySpan<float> row = scores.Span.Slice(r * columns, columns);
                    for (int g = 0; g < columns; g += m)
                    {
                        // One unique key per member: the score's ordered key, then the column reversed, so a larger key
                        // means a higher score or, at equal scores, a lower column.
                        for (int i = 0; i < m; i++)
                        {
                            ranks[i] = ((ulong)ThresholdSelection.KeyOf(row[g + i]) << 4) | (uint)(NofMOptions.MaxM - 1 - i);
                        }

                        // M ≤ 16: counting, for each member, the members that outrank it is cheaper than any sort, and
                        // the counts compile to flag sets, not branches.
                        for (int i = 0; i < m; i++)
                        {
                            int outranked = 0;
                            for (int j = 0; j < m; j++)
                            {
                                outranked += ranks[j] > ranks[i] ? 1 : 0;
                            }

                            keep[g + i] = outranked < n;
                        }
                    }

                    mask.SetKept((long)r * columns, keep.AsSpan(0, columns));
                }
            }
            finally
            {
                ArrayPool<bool>.Shared.Return(keep);
            }
        });
        return mask.ToMask();
    }
}
