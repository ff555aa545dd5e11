// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;
using System.Threading.Tasks;

namespace Compression.Pruning;

/// <summary>Runs independent per-row work over chunks of rows on the thread pool, honouring cancellation.</summary>
internal static class RowParallel
{
    /// <summary>Elements per chunk: large enough that scheduling is noise, small enough that cancellation is prompt.</summary>
    private const int ChunkElements = 1 << 15;

    /// <summary>
    /// Calls <paramref name="body"/>(firstRow, rowCount) for consecutive chunks covering [0, rows). Chunks may run
    /// concurrently, so the body must write only its own rows' results. Small inputs run inline.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled (checked between chunks).</exception>
    public static void For(int rows, int columns, CancellationToken cancellationToken, Action<int, int> body)
    {
        cancellationToken.ThrowIfCancellationRequested();
        int chunkRows = Math.Max(1, ChunkElements / Math.Max(columns, 1));
        int chunks = (rows + chunkRows - 1) / chunkRows;
        if (chunks <= 1)
        {
            body(0, rows);
            return;
        }

        // Parallel.For checks the token before each chunk and throws OperationCanceledException itself (not wrapped in
        // an AggregateException), so the body never has to.
        Parallel.For(0, chunks, new ParallelOptions { CancellationToken = cancellationToken }, chunk =>
        {
            int first = chunk * chunkRows;
            body(first, Math.Min(chunkRows, rows - first));
        });
    }
}
