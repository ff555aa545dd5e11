// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics;
using Compression.Gpu.Kernels;
using Compression.Gpu.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Gpu.Sparse;

/// <summary>
/// Sparse × dense products <c>Y = X·Aᵀ</c> on an accelerator, for a linear layer whose weight A [rows, columns] is
/// stored as CSR or BSR (X [batch, columns], Y [batch, rows], row-major), and the N:M (2:4) decompression. The
/// operands are plain arrays in the layouts of <c>Compression.Pruning.Storage</c>'s <c>CsrTensor</c>,
/// <c>BsrTensor</c> and <c>SemiStructuredTensor</c>, whose <c>RowPointers</c>, <c>ColumnIndicesUInt16</c>/<c>Int32</c>,
/// <c>Values</c> and <c>Indices</c> hand them over (this assembly does not reference the families).
/// </summary>
/// <remarks>
/// <para>Host-span overloads copy the operands to the device, run, and copy Y back; they check every length and every
/// index, so a malformed layout throws instead of reading outside device memory. Device-view overloads check lengths
/// only and trust the contents (the caller uploaded a validated layout once and multiplies many times).</para>
/// <para>CSR runs one group per (row, four batch rows): 32 lanes stride over the row's elements and add their partial
/// sums in a fixed tree, so results are deterministic; they differ from the CPU kernel's in the last bits (another
/// summation order). BSR runs one thread per output. Sums are float32.</para>
/// </remarks>
/// <example>
/// <code>
/// CsrTensor w = CsrTensor.FromPruned(pruned);
/// GpuSparseMatrixMultiply.MultiplyCsr(gpu, w.Rows, w.Columns, w.RowPointers.Span, w.ColumnIndicesUInt16.Span,
///     w.Values.Span, x.Span, batch, y.Span);
/// </code>
/// </example>
public static class GpuSparseMatrixMultiply
{
    private static readonly object s_csr32 = new(), s_csr16 = new(), s_bsr32 = new(), s_bsr16 = new(), s_decompress = new();

    /// <summary>Y = X·Aᵀ for A in CSR with int32 column indices (host arrays).</summary>
    /// <param name="gpu">The accelerator.</param>
    /// <param name="rows">Rows of A (output features).</param>
    /// <param name="columns">Columns of A (input features).</param>
    /// <param name="rowPointers">rows + 1 offsets, from 0 up to the stored count, never decreasing.</param>
    /// <param name="columnIndices">The column of each stored element, in [0, columns).</param>
    /// <param name="values">The stored elements.</param>
    /// <param name="x">X, batch × columns.</param>
    /// <param name="batch">Rows of X and Y.</param>
    /// <param name="y">Y, batch × rows, overwritten.</param>
    /// <exception cref="ArgumentException">A length, pointer or index is inconsistent with the shapes.</exception>
    public static void MultiplyCsr(GpuContext gpu, int rows, int columns, ReadOnlySpan<int> rowPointers, ReadOnlySpan<int> columnIndices,
        ReadOnlySpan<float> values, ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        CheckCompressedRows(rows, columns, rowPointers, columnIndices, values.Length, nameof(columnIndices));
        RunHostCsr(gpu, rows, columns, rowPointers, columnIndices, values, x, batch, y);
    }

    /// <summary>Y = X·Aᵀ for A in CSR with uint16 column indices (host arrays); see the int32 overload.</summary>
    /// <inheritdoc cref="MultiplyCsr(GpuContext, int, int, ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void MultiplyCsr(GpuContext gpu, int rows, int columns, ReadOnlySpan<int> rowPointers, ReadOnlySpan<ushort> columnIndices,
        ReadOnlySpan<float> values, ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        CheckCompressedRows(rows, columns, rowPointers, columnIndices, values.Length, nameof(columnIndices));
        RunHostCsr(gpu, rows, columns, rowPointers, columnIndices, values, x, batch, y);
    }

    /// <summary>Y = X·Aᵀ for A in CSR with int32 column indices already on the device (contents not checked).</summary>
    /// <inheritdoc cref="MultiplyCsr(GpuContext, int, int, ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void MultiplyCsr(GpuContext gpu, int rows, int columns, ArrayView<int> rowPointers, ArrayView<int> columnIndices,
        ArrayView<float> values, ArrayView<float> x, int batch, ArrayView<float> y) =>
        LaunchCsr<int, Int32Indices>(gpu, s_csr32, rows, columns, rowPointers, columnIndices, values, x, batch, y, DefaultLanes(gpu));

    /// <summary>Y = X·Aᵀ for A in CSR with uint16 column indices already on the device (contents not checked).</summary>
    /// <inheritdoc cref="MultiplyCsr(GpuContext, int, int, ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void MultiplyCsr(GpuContext gpu, int rows, int columns, ArrayView<int> rowPointers, ArrayView<ushort> columnIndices,
        ArrayView<float> values, ArrayView<float> x, int batch, ArrayView<float> y) =>
        LaunchCsr<ushort, UInt16Indices>(gpu, s_csr16, rows, columns, rowPointers, columnIndices, values, x, batch, y, DefaultLanes(gpu));

    /// <summary>Y = X·Aᵀ for A in BSR with int32 block-column indices (host arrays).</summary>
    /// <param name="gpu">The accelerator.</param>
    /// <param name="rows">Rows of A, a multiple of <paramref name="blockRows"/>.</param>
    /// <param name="columns">Columns of A, a multiple of <paramref name="blockColumns"/>.</param>
    /// <param name="blockRows">Rows of a block.</param>
    /// <param name="blockColumns">Columns of a block.</param>
    /// <param name="blockRowPointers">rows/blockRows + 1 offsets into the block list, never decreasing.</param>
    /// <param name="blockColumnIndices">The block column of each stored block, in [0, columns/blockColumns).</param>
    /// <param name="values">The stored blocks, [blocks, blockRows, blockColumns] row-major.</param>
    /// <param name="x">X, batch × columns.</param>
    /// <param name="batch">Rows of X and Y.</param>
    /// <param name="y">Y, batch × rows, overwritten.</param>
    /// <exception cref="ArgumentException">A length, pointer or index is inconsistent with the shapes.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A block dimension is not positive.</exception>
    public static void MultiplyBsr(GpuContext gpu, int rows, int columns, int blockRows, int blockColumns, ReadOnlySpan<int> blockRowPointers,
        ReadOnlySpan<int> blockColumnIndices, ReadOnlySpan<float> values, ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        CheckBlocks(rows, columns, blockRows, blockColumns, blockRowPointers, blockColumnIndices, values.Length);
        RunHostBsr(gpu, rows, columns, blockRows, blockColumns, blockRowPointers, blockColumnIndices, values, x, batch, y);
    }

    /// <summary>Y = X·Aᵀ for A in BSR with uint16 block-column indices (host arrays); see the int32 overload.</summary>
    /// <inheritdoc cref="MultiplyBsr(GpuContext, int, int, int, int, ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void MultiplyBsr(GpuContext gpu, int rows, int columns, int blockRows, int blockColumns, ReadOnlySpan<int> blockRowPointers,
        ReadOnlySpan<ushort> blockColumnIndices, ReadOnlySpan<float> values, ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        CheckBlocks(rows, columns, blockRows, blockColumns, blockRowPointers, blockColumnIndices, values.Length);
        RunHostBsr(gpu, rows, columns, blockRows, blockColumns, blockRowPointers, blockColumnIndices, values, x, batch, y);
    }

    /// <summary>Y = X·Aᵀ for A in BSR with int32 block-column indices already on the device (contents not checked).</summary>
    /// <inheritdoc cref="MultiplyBsr(GpuContext, int, int, int, int, ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void MultiplyBsr(GpuContext gpu, int rows, int columns, int blockRows, int blockColumns, ArrayView<int> blockRowPointers,
        ArrayView<int> blockColumnIndices, ArrayView<float> values, ArrayView<float> x, int batch, ArrayView<float> y) =>
        LaunchBsr<int, Int32Indices>(gpu, s_bsr32, rows, columns, blockRows, blockColumns, blockRowPointers, blockColumnIndices, values, x, batch, y);

    /// <summary>Y = X·Aᵀ for A in BSR with uint16 block-column indices already on the device (contents not checked).</summary>
    /// <inheritdoc cref="MultiplyBsr(GpuContext, int, int, int, int, ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void MultiplyBsr(GpuContext gpu, int rows, int columns, int blockRows, int blockColumns, ArrayView<int> blockRowPointers,
        ArrayView<ushort> blockColumnIndices, ArrayView<float> values, ArrayView<float> x, int batch, ArrayView<float> y) =>
        LaunchBsr<ushort, UInt16Indices>(gpu, s_bsr16, rows, columns, blockRows, blockColumns, blockRowPointers, blockColumnIndices, values, x, batch, y);

    /// <summary>
    /// Expands an N:M matrix (2:4 by default) to dense: <paramref name="values"/> [rows, columns·n/m] and their
    /// ⌈log₂ m⌉-bit in-group indices packed as <c>SemiStructuredTensor.Indices</c> packs them (value k of the matrix at
    /// bits [k·b, k·b + b), little-endian) into <paramref name="destination"/> [rows, columns].
    /// </summary>
    /// <exception cref="ArgumentException">A length does not match the shape, columns is not a multiple of m, or an
    /// index is not below m or not increasing within its group.</exception>
    /// <exception cref="ArgumentOutOfRangeException">n is outside [1, m] or m outside [2, 256].</exception>
    public static void DecompressSemiStructured(GpuContext gpu, int rows, int columns, ReadOnlySpan<float> values, ReadOnlySpan<byte> indices,
        Span<float> destination, int n = 2, int m = 4)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        int width = CheckSemiStructured(rows, columns, n, m, values.Length, indices.Length, destination.Length);
        int previous = -1;
        for (int k = 0; k < values.Length; k++)
        {
            int index = ReadField(indices, (long)k * width, width);
            previous = k % n == 0 ? -1 : previous;
            if (index >= m || index <= previous)
            {
                throw new ArgumentException($"Value {k} has in-group index {index} after {previous}; indices must increase strictly within [0, {m}).", nameof(indices));
            }

            previous = index;
        }

        if (destination.IsEmpty)
        {
            return;
        }

        Accelerator accelerator = gpu.Accelerator;
        using MemoryBuffer1D<float, Stride1D.Dense> valueBuffer = Upload(accelerator, values);
        using MemoryBuffer1D<byte, Stride1D.Dense> indexBuffer = Upload(accelerator, indices);
        using MemoryBuffer1D<float, Stride1D.Dense> output = accelerator.Allocate1D<float>(destination.Length);
        LaunchDecompress(gpu, rows, columns, n, m, width, valueBuffer.View, indexBuffer.View, output.View);
        output.View.BaseView.CopyToCPU(destination);
    }

    /// <summary>The N:M decompression on device views (lengths checked, indices trusted).</summary>
    /// <inheritdoc cref="DecompressSemiStructured(GpuContext, int, int, ReadOnlySpan{float}, ReadOnlySpan{byte}, Span{float}, int, int)"/>
    public static void DecompressSemiStructured(GpuContext gpu, int rows, int columns, ArrayView<float> values, ArrayView<byte> indices,
        ArrayView<float> destination, int n = 2, int m = 4)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        int width = CheckSemiStructured(rows, columns, n, m, values.Length, indices.Length, destination.Length);
        LaunchDecompress(gpu, rows, columns, n, m, width, values, indices, destination);
    }

    /// <summary>Lanes per CSR row: a warp on GPUs; 4 on ILGPU's CPU simulator, which runs each lane as a thread.</summary>
    internal static int DefaultLanes(GpuContext gpu) => gpu.Kind == GpuDeviceKind.CpuSimulator ? 4 : SparseKernels.MaxLanes;

    /// <summary>The CSR launch with a chosen lane count (a power of two ≤ 32); tests cover several.</summary>
    internal static void LaunchCsr<TIndex, TReader>(GpuContext gpu, object key, int rows, int columns, ArrayView<int> rowPointers,
        ArrayView<TIndex> columnIndices, ArrayView<float> values, ArrayView<float> x, int batch, ArrayView<float> y, int lanes)
        where TIndex : unmanaged
        where TReader : struct, IIndexReader<TIndex>
    {
        ArgumentNullException.ThrowIfNull(gpu);
        CheckDense(rows, columns, x.Length, batch, y.Length);
        RequireLength(rowPointers.Length, rows + 1L, nameof(rowPointers));
        if (values.Length != columnIndices.Length)
        {
            throw new ArgumentException($"{columnIndices.Length} column indices for {values.Length} values.", nameof(columnIndices));
        }

        if (lanes < 1 || lanes > SparseKernels.MaxLanes || (lanes & (lanes - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(lanes), lanes, $"Lanes must be a power of two up to {SparseKernels.MaxLanes}.");
        }

        if (rows == 0 || batch == 0)
        {
            return;
        }

        var kernel = gpu.GetOrLoadKernel(key, a =>
            a.LoadStreamKernel<ArrayView<int>, ArrayView<TIndex>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(
                SparseKernels.CsrMultiply<TIndex, TReader>));
        int tiles = (batch + SparseKernels.BatchTile - 1) / SparseKernels.BatchTile;
        kernel(new KernelConfig(new Index2D(rows, tiles), new Index2D(lanes, 1)), rowPointers, columnIndices, values, x, y, rows, columns, batch);
    }

    private static void LaunchBsr<TIndex, TReader>(GpuContext gpu, object key, int rows, int columns, int blockRows, int blockColumns,
        ArrayView<int> blockRowPointers, ArrayView<TIndex> blockColumnIndices, ArrayView<float> values, ArrayView<float> x, int batch, ArrayView<float> y)
        where TIndex : unmanaged
        where TReader : struct, IIndexReader<TIndex>
    {
        ArgumentNullException.ThrowIfNull(gpu);
        CheckBlockShape(rows, columns, blockRows, blockColumns);
        CheckDense(rows, columns, x.Length, batch, y.Length);
        RequireLength(blockRowPointers.Length, rows / blockRows + 1L, nameof(blockRowPointers));
        RequireLength(values.Length, blockColumnIndices.Length * blockRows * blockColumns, nameof(values));
        if (rows == 0 || batch == 0)
        {
            return;
        }

        if ((long)rows * batch > int.MaxValue)
        {
            throw new ArgumentException($"{rows} rows × batch {batch} outputs exceed one launch ({int.MaxValue}); split the batch.", nameof(batch));
        }

        var kernel = gpu.GetOrLoadKernel(key, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<TIndex>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(
                SparseKernels.BsrMultiply<TIndex, TReader>));
        kernel(rows * batch, blockRowPointers, blockColumnIndices, values, x, y, rows, columns, blockRows, blockColumns);
    }

    private static void LaunchDecompress(GpuContext gpu, int rows, int columns, int n, int m, int width,
        ArrayView<float> values, ArrayView<byte> indices, ArrayView<float> destination)
    {
        long groups = (long)rows * (columns / m);
        if (groups == 0)
        {
            return;
        }

        var kernel = gpu.GetOrLoadKernel(s_decompress, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<float>, int, int, int, int>(
                SparseKernels.DecompressSemiStructured));
        kernel((int)groups, values, indices, destination, columns, n, m, width);
    }

    private static void RunHostCsr<TIndex>(GpuContext gpu, int rows, int columns, ReadOnlySpan<int> rowPointers, ReadOnlySpan<TIndex> columnIndices,
        ReadOnlySpan<float> values, ReadOnlySpan<float> x, int batch, Span<float> y)
        where TIndex : unmanaged
    {
        ArgumentNullException.ThrowIfNull(gpu);
        CheckDense(rows, columns, x.Length, batch, y.Length);
        if (y.IsEmpty)
        {
            return;
        }

        Accelerator accelerator = gpu.Accelerator;
        using MemoryBuffer1D<int, Stride1D.Dense> pointers = Upload(accelerator, rowPointers);
        using MemoryBuffer1D<TIndex, Stride1D.Dense> indices = Upload(accelerator, columnIndices);
        using MemoryBuffer1D<float, Stride1D.Dense> stored = Upload(accelerator, values);
        using MemoryBuffer1D<float, Stride1D.Dense> input = Upload(accelerator, x);
        using MemoryBuffer1D<float, Stride1D.Dense> output = accelerator.Allocate1D<float>(y.Length);
        if (typeof(TIndex) == typeof(ushort))
        {
            LaunchCsr<ushort, UInt16Indices>(gpu, s_csr16, rows, columns, pointers.View, indices.View.BaseView.Cast<ushort>(), stored.View, input.View, batch, output.View, DefaultLanes(gpu));
        }
        else
        {
            LaunchCsr<int, Int32Indices>(gpu, s_csr32, rows, columns, pointers.View, indices.View.BaseView.Cast<int>(), stored.View, input.View, batch, output.View, DefaultLanes(gpu));
        }

        output.View.BaseView.CopyToCPU(y);
    }

    private static void RunHostBsr<TIndex>(GpuContext gpu, int rows, int columns, int blockRows, int blockColumns, ReadOnlySpan<int> blockRowPointers,
        ReadOnlySpan<TIndex> blockColumnIndices, ReadOnlySpan<float> values, ReadOnlySpan<float> x, int batch, Span<float> y)
        where TIndex : unmanaged
    {
        ArgumentNullException.ThrowIfNull(gpu);
        CheckDense(rows, columns, x.Length, batch, y.Length);
        if (y.IsEmpty)
        {
            return;
        }

        Accelerator accelerator = gpu.Accelerator;
        using MemoryBuffer1D<int, Stride1D.Dense> pointers = Upload(accelerator, blockRowPointers);
        using MemoryBuffer1D<TIndex, Stride1D.Dense> indices = Upload(accelerator, blockColumnIndices);
        using MemoryBuffer1D<float, Stride1D.Dense> stored = Upload(accelerator, values);
        using MemoryBuffer1D<float, Stride1D.Dense> input = Upload(accelerator, x);
        using MemoryBuffer1D<float, Stride1D.Dense> output = accelerator.Allocate1D<float>(y.Length);
        if (typeof(TIndex) == typeof(ushort))
        {
            LaunchBsr<ushort, UInt16Indices>(gpu, s_bsr16, rows, columns, blockRows, blockColumns, pointers.View, indices.View.BaseView.Cast<ushort>(), stored.View, input.View, batch, output.View);
        }
        else
        {
            LaunchBsr<int, Int32Indices>(gpu, s_bsr32, rows, columns, blockRows, blockColumns, pointers.View, indices.View.BaseView.Cast<int>(), stored.View, input.View, batch, output.View);
        }

        output.View.BaseView.CopyToCPU(y);
    }

    /// <summary>A device copy of a host span; at least one element, so that empty operands still have a view.</summary>
    private static MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(Accelerator accelerator, ReadOnlySpan<T> data)
        where T : unmanaged
    {
        MemoryBuffer1D<T, Stride1D.Dense> buffer = accelerator.Allocate1D<T>(Math.Max(data.Length, 1));
        if (!data.IsEmpty)
        {
            buffer.View.SubView(0, data.Length).BaseView.CopyFromCPU(data);
        }

        return buffer;
    }

    private static void CheckDense(int rows, int columns, long xLength, int batch, long yLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        if (xLength < (long)batch * columns)
        {
            throw new ArgumentException($"X holds {xLength} values; batch {batch} × {columns} columns are needed.", "x");
        }

        if (yLength < (long)batch * rows)
        {
            throw new ArgumentException($"Y holds {yLength} values; batch {batch} × {rows} rows are needed.", "y");
        }

        if ((batch + SparseKernels.BatchTile - 1) / SparseKernels.BatchTile > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(batch), batch, $"At most {65535 * SparseKernels.BatchTile} batch rows per launch.");
        }
    }

    private static void CheckCompressedRows<TIndex>(int rows, int columns, ReadOnlySpan<int> pointers, ReadOnlySpan<TIndex> indices, int valueCount, string name)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        RequireLength(pointers.Length, rows + 1L, "rowPointers");
        if (pointers[0] != 0 || pointers[rows] != indices.Length || indices.Length != valueCount)
        {
            throw new ArgumentException(
                $"Row pointers run from {pointers[0]} to {pointers[rows]} over {indices.Length} indices and {valueCount} values; 0 to the common count expected.", "rowPointers");
        }

        for (int r = 0; r < rows; r++)
        {
            if (pointers[r + 1] < pointers[r])
            {
                throw new ArgumentException($"Row pointer {r + 1} ({pointers[r + 1]}) is below the one before ({pointers[r]}).", "rowPointers");
            }
        }

        for (int k = 0; k < indices.Length; k++)
        {
            int column = int.CreateTruncating(indices[k]);
            if ((uint)column >= (uint)columns)
            {
                throw new ArgumentException($"Index {k} is {column}, outside [0, {columns}).", name);
            }
        }
    }

    private static void CheckBlocks<TIndex>(int rows, int columns, int blockRows, int blockColumns, ReadOnlySpan<int> pointers,
        ReadOnlySpan<TIndex> indices, int valueCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckBlockShape(rows, columns, blockRows, blockColumns);
        CheckCompressedRows(rows / blockRows, columns / blockColumns, pointers, indices, indices.Length, "blockColumnIndices");
        RequireLength(valueCount, (long)indices.Length * blockRows * blockColumns, "values");
    }

    private static void CheckBlockShape(int rows, int columns, int blockRows, int blockColumns)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockRows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockColumns);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        if (rows % blockRows != 0 || columns % blockColumns != 0)
        {
            throw new ArgumentException($"Blocks of {blockRows}×{blockColumns} do not tile a {rows}×{columns} matrix.", nameof(blockRows));
        }
    }

    private static int CheckSemiStructured(int rows, int columns, int n, int m, long values, long indices, long destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(m, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(m, 256);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, m);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        if (columns % m != 0)
        {
            throw new ArgumentException($"{columns} columns are not whole groups of {m}.", nameof(columns));
        }

        int width = 32 - BitOperations.LeadingZeroCount((uint)(m - 1));
        long slots = (long)rows * (columns / m) * n;
        RequireLength(values, slots, nameof(values));
        RequireLength(indices, (slots * width + 7) / 8, nameof(indices));
        RequireLength(destination, (long)rows * columns, nameof(destination));
        if ((long)rows * (columns / m) > int.MaxValue)
        {
            throw new ArgumentException($"{rows}×{columns / m} groups exceed one launch.", nameof(rows));
        }

        return width;
    }

    private static int ReadField(ReadOnlySpan<byte> bytes, long position, int width)
    {
        int at = (int)(position >> 3);
        int word = bytes[at] | (at + 1 < bytes.Length ? bytes[at + 1] << 8 : 0);
        return (word >> (int)(position & 7)) & ((1 << width) - 1);
    }

    private static void RequireLength(long actual, long expected, string name)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{name} holds {actual} elements; the shape needs {expected}.", name);
        }
    }
}
