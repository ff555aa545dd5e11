// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers;
using System.Threading;

namespace Compression.Pruning;

/// <summary>
/// Unstructured pruning of a score matrix: the lowest-scoring <c>round(sparsity·count)</c> weights of every comparison
/// group (the layer or each row) go, ties pruned lowest flat index first. Magnitude pruning passes the weights as
/// their own scores; Wanda passes |W|·‖X‖.
/// </summary>
internal static class UnstructuredSelection
{
    /// <summary>The mask keeping all but the lowest |scores| of each group.</summary>
    public static SparsityMask Prune(ReadOnlyMemory<float> scores, int rows, int columns, double sparsity, PruningScope scope,
        CancellationToken cancellationToken)
    {
        var mask = new MaskBuilder(rows, columns);
        if (scope == PruningScope.PerLayer)
        {
            long pruned = PruningGuards.PrunedCount(sparsity, (long)rows * columns);
            var cursor = new ThresholdCursor(pruned == 0 ? default : ThresholdSelection.Select(scores, pruned), pruned);
            // One walk in flat order: the tie quota is spent lowest index first, which a row-parallel walk could not do.
            bool[] keep = ArrayPool<bool>.Shared.Rent(columns);
            try
            {
                for (int r = 0; r < rows; r++)
                {
                    if ((r & 63) == 0)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                    }

                    Walk(scores.Span.Slice(r * columns, columns), ref cursor, keep);
                    mask.SetKept((long)r * columns, keep.AsSpan(0, columns));
                }
            }
            finally
            {
                ArrayPool<bool>.Shared.Return(keep);
            }

            return mask.ToMask();
        }

        long perRow = PruningGuards.PrunedCount(sparsity, columns);
        RowParallel.For(rows, columns, cancellationToken, (first, count) =>
        {
            bool[] keep = ArrayPool<bool>.Shared.Rent(columns);
            try
            {
                for (int r = first; r < first + count; r++)
                {
                    ReadOnlyMemory<float> row = scores.Slice(r * columns, columns);
                    var cursor = new ThresholdCursor(perRow == 0 ? default : ThresholdSelection.Select(row, perRow), perRow);
                    Walk(row.Span, ref cursor, keep);
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

    private static void Walk(ReadOnlySpan<float> scores, ref ThresholdCursor cursor, bool[] keep)
    {
        for (int c = 0; c < scores.Length; c++)
        {
            keep[c] = cursor.Keeps(scores[c]);
        }
    }
}
