// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using ILGPU;

namespace Compression.Gpu.Kernels;

/// <summary>Reads one column index as int32 from a view of <typeparamref name="TIndex"/> (uint16 or int32 storage).</summary>
internal interface IIndexReader<TIndex>
    where TIndex : unmanaged
{
    int Read(ArrayView<TIndex> view, int index);
}

/// <summary>int32 indices.</summary>
internal readonly struct Int32Indices : IIndexReader<int>
{
    public int Read(ArrayView<int> view, int index) => view[index];
}

/// <summary>uint16 indices (layouts of at most 65 536 columns).</summary>
internal readonly struct UInt16Indices : IIndexReader<ushort>
{
    public int Read(ArrayView<ushort> view, int index) => view[index];
}

/// <summary>
/// Device code of the sparse × dense products <c>Y = X·Aᵀ</c> (A [rows, inputs] sparse, X [batch, inputs] and
/// Y [batch, rows] dense, row-major) and of the N:M decompression. No allocation, no exceptions: the host validated
/// every length and index.
/// </summary>
internal static class SparseKernels
{
    /// <summary>Batch rows each group of <see cref="CsrMultiply"/> computes.</summary>
    public const int BatchTile = 4;

    /// <summary>The most lanes a group of <see cref="CsrMultiply"/> may have (a power of two).</summary>
    public const int MaxLanes = 32;

    /// <summary>
    /// CSR, one group per (row, tile of four batch rows): the group's lanes stride over the row's stored elements
    /// (consecutive lanes read consecutive values and indices: coalesced), each lane keeps four partial sums, and a
    /// tree in shared memory adds the lanes' sums in a fixed order (deterministic).
    /// </summary>
    public static void CsrMultiply<TIndex, TReader>(
        ArrayView<int> rowPointers, ArrayView<TIndex> columnIndices, ArrayView<float> values,
        ArrayView<float> x, ArrayView<float> y, int rows, int inputs, int batch)
        where TIndex : unmanaged
        where TReader : struct, IIndexReader<TIndex>
    {
        int row = Grid.IdxX, b0 = Grid.IdxY * BatchTile, lane = Group.IdxX, lanes = Group.DimX;
        ArrayView<float> partial = SharedMemory.Allocate<float>(BatchTile * MaxLanes);
        bool has1 = b0 + 1 < batch, has2 = b0 + 2 < batch, has3 = b0 + 3 < batch;
        long x0 = (long)b0 * inputs;
        long x1 = has1 ? x0 + inputs : x0, x2 = has2 ? x0 + 2L * inputs : x0, x3 = has3 ? x0 + 3L * inputs : x0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int end = rowPointers[row + 1];
        TReader reader = default;
        for (int k = rowPointers[row] + lane; k < end; k += lanes)
        {
            int column = reader.Read(columnIndices, k);
            float v = values[k];
            s0 += v * x[x0 + column];
            s1 += v * x[x1 + column];          // rows past the batch read row b0 again and are never stored
            s2 += v * x[x2 + column];
            s3 += v * x[x3 + column];
        }

        partial[lane] = s0;
        partial[MaxLanes + lane] = s1;
        partial[2 * MaxLanes + lane] = s2;
        partial[3 * MaxLanes + lane] = s3;
        Group.Barrier();
        for (int stride = lanes / 2; stride > 0; stride /= 2)
        {
            if (lane < stride)
            {
                partial[lane] += partial[lane + stride];
                partial[MaxLanes + lane] += partial[MaxLanes + lane + stride];
                partial[2 * MaxLanes + lane] += partial[2 * MaxLanes + lane + stride];
                partial[3 * MaxLanes + lane] += partial[3 * MaxLanes + lane + stride];
            }

            Group.Barrier();
        }

        if (lane == 0)
        {
            y[(long)b0 * rows + row] = partial[0];
            if (has1)
            {
                y[(long)(b0 + 1) * rows + row] = partial[MaxLanes];
            }

            if (has2)
            {
                y[(long)(b0 + 2) * rows + row] = partial[2 * MaxLanes];
            }

            if (has3)
            {
                y[(long)(b0 + 3) * rows + row] = partial[3 * MaxLanes];
            }
        }
    }

    /// <summary>
    /// BSR, one thread per output (row r, batch row b; thread b·rows + r): the dot product of row r of its block row's stored blocks with
    /// the matching segments of X[b]. Threads of a warp share the block row (their blocks sit in the same cache lines)
    /// and the batch row (their X reads are broadcasts).
    /// </summary>
    public static void BsrMultiply<TIndex, TReader>(
        Index1D index, ArrayView<int> blockRowPointers, ArrayView<TIndex> blockColumnIndices, ArrayView<float> values,
        ArrayView<float> x, ArrayView<float> y, int rows, int inputs, int blockRows, int blockColumns)
        where TIndex : unmanaged
        where TReader : struct, IIndexReader<TIndex>
    {
        int b = index.X / rows, row = index.X - b * rows;           // consecutive threads: consecutive rows
        int blockRow = row / blockRows, i = row - blockRow * blockRows;
        long xRow = (long)b * inputs;
        long blockSize = (long)blockRows * blockColumns;
        TReader reader = default;
        float sum = 0;
        int end = blockRowPointers[blockRow + 1];
        for (int k = blockRowPointers[blockRow]; k < end; k++)
        {
            long w = k * blockSize + (long)i * blockColumns;
            long c = xRow + (long)reader.Read(blockColumnIndices, k) * blockColumns;
            for (int j = 0; j < blockColumns; j++)
            {
                sum += values[w + j] * x[c + j];
            }
        }

        y[(long)b * rows + row] = sum;
    }

    /// <summary>
    /// N:M decompression, one thread per group of M columns: zeros, then the group's N values at their in-group
    /// indices (⌈log₂ M⌉-bit fields, value k of the matrix at bits [k·width, k·width + width), little-endian).
    /// </summary>
    public static void DecompressSemiStructured(
        Index1D index, ArrayView<float> values, ArrayView<byte> indices, ArrayView<float> dense, int columns, int n, int m, int width)
    {
        int groupsPerRow = columns / m;
        int row = index.X / groupsPerRow, group = index.X - row * groupsPerRow;
        long target = (long)row * columns + (long)group * m;
        for (int c = 0; c < m; c++)
        {
            dense[target + c] = 0f;
        }

        long slot = (long)index.X * n;        // the values of a row's groups are consecutive: group g of row r starts at (r·G + g)·n
        int fieldMask = (1 << width) - 1;
        for (int s = 0; s < n; s++)
        {
            long position = (slot + s) * width;
            long at = position >> 3;
            int word = indices[at];
            if (at + 1 < indices.Length)
            {
                word |= indices[at + 1] << 8;
            }

            int inGroup = (word >> (int)(position & 7)) & fieldMask;
            dense[target + inGroup] = values[slot + s];
        }
    }
}
