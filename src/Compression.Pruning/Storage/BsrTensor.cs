// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Pruning.Storage;

/// <summary>
/// A sparse matrix in block compressed sparse row (BSR) layout: the matrix is cut into <see cref="BlockRows"/> ×
/// <see cref="BlockColumns"/> blocks, the blocks holding any stored element are kept dense, and each block row lists
/// its blocks' columns (CSR over blocks, as scipy.sparse.bsr_matrix and cuSPARSE's bsrmm store them).
/// </summary>
/// <remarks>
/// <para>Storage, every byte counted by <see cref="CompressedTensor.StorageBits"/>:</para>
/// <list type="bullet">
/// <item><c>block_row_pointers</c>: int32 × (Rows/BlockRows + 1).</item>
/// <item><c>block_column_indices</c>: uint16 × blocks when Columns/BlockColumns ≤ 65 536 (always, in practice),
/// int32 otherwise.</item>
/// <item><c>values</c>: float32 × [blocks, BlockRows, BlockColumns], each block row-major.</item>
/// </list>
/// <para>StorageBits = 32·(Rows/BlockRows + 1) + (16 or 32)·blocks + 32·blocks·BlockRows·BlockColumns. The block shape
/// must divide the matrix. Decompression writes +0 outside the stored blocks and the stored blocks bit for bit.
/// <see cref="SparsityMask"/> is every position of the stored blocks (a block's pruned positions are stored zeros).
/// Serialized as kind "bsr".</para>
/// </remarks>
public sealed class BsrTensor : CompressedTensor
{
    internal const string KindName = "bsr";
    private readonly int[] _blockRowPointers;
    private readonly ColumnIndexArray _blockColumns;
    private readonly float[] _values;
    private SparsityMask? _mask;

    private BsrTensor(int rows, int columns, int blockRows, int blockColumns, int[] blockRowPointers, ColumnIndexArray blockColumnIndices, float[] values)
        : base(rows, columns)
    {
        BlockRows = blockRows;
        BlockColumns = blockColumns;
        _blockRowPointers = blockRowPointers;
        _blockColumns = blockColumnIndices;
        _values = values;
    }

    /// <summary>Rows of one block.</summary>
    public int BlockRows { get; }

    /// <summary>Columns of one block.</summary>
    public int BlockColumns { get; }

    /// <summary>The number of stored blocks.</summary>
    public int BlockCount => _blockColumns.Length;

    /// <summary>Rows/BlockRows + 1 offsets into the block list: block row i holds blocks [p[i], p[i + 1]).</summary>
    public ReadOnlyMemory<int> BlockRowPointers => _blockRowPointers;

    /// <summary>Bits per stored block-column index: 16 when Columns/BlockColumns ≤ 65 536, otherwise 32.</summary>
    public int BlockColumnIndexBits => _blockColumns.Bits;

    /// <summary>The block-column indices when <see cref="BlockColumnIndexBits"/> is 16; empty otherwise.</summary>
    public ReadOnlyMemory<ushort> BlockColumnIndicesUInt16 => _blockColumns.Narrow;

    /// <summary>The block-column indices when <see cref="BlockColumnIndexBits"/> is 32; empty otherwise.</summary>
    public ReadOnlyMemory<int> BlockColumnIndicesInt32 => _blockColumns.Wide;

    /// <summary>The stored blocks, [BlockCount, BlockRows, BlockColumns] row-major.</summary>
    public ReadOnlyMemory<float> Values => _values;

    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <inheritdoc/>
    public override long StorageBits => ComputeStorageBits(Rows, Columns, BlockRows, BlockColumns, BlockCount);

    /// <summary>Every position of the stored blocks.</summary>
    public override SparsityMask SparsityMask => _mask ??= BuildMask();

    internal int[] BlockRowPointerArray => _blockRowPointers;

    internal ColumnIndexArray BlockColumnIndexArray => _blockColumns;

    internal float[] ValueArray => _values;

    /// <summary>The block-column indices widened to int32 (a copy), whatever their stored width.</summary>
    public int[] GetBlockColumnIndices() => _blockColumns.ToInt32();

    /// <summary>StorageBits of a BSR matrix of this shape with <paramref name="blocks"/> stored blocks, without building it.</summary>
    /// <exception cref="ArgumentException">The block shape does not divide the matrix.</exception>
    public static long ComputeStorageBits(int rows, int columns, int blockRows, int blockColumns, long blocks)
    {
        CheckBlocks(rows, columns, blockRows, blockColumns, nameof(blockRows));
        return 32L * (rows / blockRows + 1) + ColumnIndexArray.BitsFor(columns / blockColumns) * blocks +
               32L * blocks * blockRows * blockColumns;
    }

    /// <summary>Stores the blocks of <paramref name="matrix"/> holding an element whose bits are not those of +0.</summary>
    /// <exception cref="ArgumentException">Not a matrix, or the block shape does not divide it.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A block dimension is not positive.</exception>
    public static BsrTensor FromDense(DenseTensor matrix, int blockRows, int blockColumns)
    {
        MaskBits.CheckMatrix(matrix, nameof(matrix));
        CheckBlocks(matrix.Rows, matrix.Columns, blockRows, blockColumns, nameof(matrix));
        return Build(matrix.Rows, matrix.Columns, blockRows, blockColumns, MaskBits.NonZero(matrix), matrix.Span);
    }

    /// <summary>Stores the blocks holding a weight <paramref name="pruned"/> keeps (a block of kept zeros included).</summary>
    /// <exception cref="ArgumentException">The block shape does not divide the matrix.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A block dimension is not positive.</exception>
    public static BsrTensor FromPruned(PrunedTensor pruned, int blockRows, int blockColumns)
    {
        ArgumentNullException.ThrowIfNull(pruned);
        CheckBlocks(pruned.Rows, pruned.Columns, blockRows, blockColumns, nameof(pruned));
        return Build(pruned.Rows, pruned.Columns, blockRows, blockColumns, pruned.Mask.ToBytes(), pruned.Decompress().Span);
    }

    /// <summary>The number of blocks <see cref="FromPruned"/> would store for <paramref name="mask"/>.</summary>
    /// <exception cref="ArgumentException">The block shape does not divide the matrix.</exception>
    public static long CountBlocks(SparsityMask mask, int blockRows, int blockColumns)
    {
        ArgumentNullException.ThrowIfNull(mask);
        CheckBlocks(mask.Rows, mask.Columns, blockRows, blockColumns, nameof(mask));
        bool[,] occupied = Occupancy(mask.Rows, mask.Columns, blockRows, blockColumns, mask.ToBytes());
        long count = 0;
        foreach (bool o in occupied)
        {
            count += o ? 1 : 0;
        }

        return count;
    }

    /// <summary>A serializer that also reads BSR tensors.</summary>
    public static CompressedTensorSerializer Register(CompressedTensorSerializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        return serializer.WithKind(KindName, Read);
    }

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination)
    {
        destination.Clear();
        int blockSize = BlockRows * BlockColumns;
        for (int br = 0; br + 1 < _blockRowPointers.Length; br++)
        {
            for (int b = _blockRowPointers[br]; b < _blockRowPointers[br + 1]; b++)
            {
                int column = _blockColumns[b] * BlockColumns;
                for (int i = 0; i < BlockRows; i++)
                {
                    _values.AsSpan(b * blockSize + i * BlockColumns, BlockColumns)
                        .CopyTo(destination.Slice((br * BlockRows + i) * Columns + column, BlockColumns));
                }
            }
        }
    }

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteAttribute("block_rows", BlockRows);
        writer.WriteAttribute("block_columns", BlockColumns);
        writer.WriteTensor<int>("block_row_pointers", SafetensorsDType.I32, [_blockRowPointers.Length], _blockRowPointers);
        _blockColumns.Write(writer, "block_column_indices");
        writer.WriteTensor<float>("values", SafetensorsDType.F32, [BlockCount, BlockRows, BlockColumns], _values);
    }

    private static void CheckBlocks(int rows, int columns, int blockRows, int blockColumns, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockRows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockColumns);
        if (rows % blockRows != 0 || columns % blockColumns != 0)
        {
            throw new ArgumentException(
                $"Blocks of {blockRows}×{blockColumns} do not tile a {rows}×{columns} matrix; each block dimension must divide the matrix's.", name);
        }
    }

    private static bool[,] Occupancy(int rows, int columns, int blockRows, int blockColumns, byte[] bits)
    {
        var occupied = new bool[rows / blockRows, columns / blockColumns];
        long flat = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++, flat++)
            {
                if (MaskBits.IsSet(bits, flat))
                {
                    occupied[r / blockRows, c / blockColumns] = true;
                }
            }
        }

        return occupied;
    }

    private static BsrTensor Build(int rows, int columns, int blockRows, int blockColumns, byte[] bits, ReadOnlySpan<float> dense)
    {
        bool[,] occupied = Occupancy(rows, columns, blockRows, blockColumns, bits);
        int gridRows = occupied.GetLength(0), gridColumns = occupied.GetLength(1);
        var pointers = new int[gridRows + 1];
        for (int br = 0; br < gridRows; br++)
        {
            int count = 0;
            for (int bc = 0; bc < gridColumns; bc++)
            {
                count += occupied[br, bc] ? 1 : 0;
            }

            pointers[br + 1] = checked(pointers[br] + count);
        }

        int blocks = pointers[gridRows], blockSize = blockRows * blockColumns;
        ColumnIndexArray indices = ColumnIndexArray.Allocate(blocks, gridColumns);
        var values = new float[checked((long)blocks * blockSize)];
        int b = 0;
        for (int br = 0; br < gridRows; br++)
        {
            for (int bc = 0; bc < gridColumns; bc++)
            {
                if (!occupied[br, bc])
                {
                    continue;
                }

                indices.Set(b, bc);
                for (int i = 0; i < blockRows; i++)
                {
                    dense.Slice((br * blockRows + i) * columns + bc * blockColumns, blockColumns)
                        .CopyTo(values.AsSpan(b * blockSize + i * blockColumns, blockColumns));
                }

                b++;
            }
        }

        return new BsrTensor(rows, columns, blockRows, blockColumns, pointers, indices, values);
    }

    private SparsityMask BuildMask()
    {
        byte[] bits = MaskBits.Allocate(Rows, Columns);
        for (int br = 0; br + 1 < _blockRowPointers.Length; br++)
        {
            for (int b = _blockRowPointers[br]; b < _blockRowPointers[br + 1]; b++)
            {
                for (int i = 0; i < BlockRows; i++)
                {
                    long start = (long)(br * BlockRows + i) * Columns + _blockColumns[b] * BlockColumns;
                    for (int j = 0; j < BlockColumns; j++)
                    {
                        MaskBits.Set(bits, start + j);
                    }
                }
            }
        }

        return SparsityMask.FromBytes(Rows, Columns, bits);
    }

    private static BsrTensor Read(CompressedTensorReader reader)
    {
        long blockRows = reader.ReadInt64Attribute("block_rows"), blockColumns = reader.ReadInt64Attribute("block_columns");
        if (blockRows is < 1 or > int.MaxValue || blockColumns is < 1 or > int.MaxValue ||
            reader.Rows % blockRows != 0 || reader.Columns % blockColumns != 0)
        {
            throw new InvalidDataException($"'{reader.Prefix}' has blocks of {blockRows}×{blockColumns}, which do not tile {reader.Rows}×{reader.Columns}.");
        }

        int gridRows = (int)(reader.Rows / blockRows), gridColumns = (int)(reader.Columns / blockColumns);
        int[] pointers = ColumnIndexArray.ReadPointers(reader, "block_row_pointers", gridRows + 1L);
        ColumnIndexArray indices = ColumnIndexArray.Read(reader, "block_column_indices", pointers[^1], gridColumns);
        indices.Validate(reader.Prefix, pointers, gridColumns);
        float[] values = reader.ReadTensor<float>("values", SafetensorsDType.F32, indices.Length, blockRows, blockColumns);
        return new BsrTensor(reader.Rows, reader.Columns, (int)blockRows, (int)blockColumns, pointers, indices, values);
    }
}
