// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Pruning.Storage;

/// <summary>
/// A sparse matrix in compressed sparse row (CSR) layout: for each row the columns and values of its stored
/// elements, in increasing column order, and one pointer per row into those arrays.
/// </summary>
/// <remarks>
/// <para>Storage, every byte counted by <see cref="CompressedTensor.StorageBits"/>:</para>
/// <list type="bullet">
/// <item><c>row_pointers</c>: int32 × (Rows + 1). int64 is never needed: the values live in one .NET array, at most
/// <see cref="Array.MaxLength"/> (&lt; 2³¹) elements, so every pointer fits in int32. Files with int64 pointers
/// (as other tools write them) are read too.</item>
/// <item><c>column_indices</c>: uint16 (U16) × stored when Columns ≤ 65 536, int32 otherwise. Every linear layer of
/// today's language models has fewer than 65 536 inputs, so CSR costs 48 bits per stored weight instead of 64 and
/// beats dense float32 below 2/3 density (1/2 with int32 indices).</item>
/// <item><c>values</c>: float32 × stored.</item>
/// </list>
/// <para>StorageBits = 32·(Rows + 1) + (16 or 32 + 32)·stored. Decompression writes +0 everywhere else and the stored
/// values bit for bit. Serialized as kind "csr". See docs/pruning.md, "Storage and kernels".</para>
/// </remarks>
/// <example>
/// <code>
/// CsrTensor csr = CsrTensor.FromPruned(pruned);                       // kept weights, kept zeros included
/// var y = new DenseTensor(batch, csr.Rows);
/// SparseMatrixMultiply.Multiply(csr, x, y);                           // y = x·Wᵀ
/// </code>
/// </example>
public sealed class CsrTensor : CompressedTensor
{
    internal const string KindName = "csr";
    private readonly int[] _rowPointers;
    private readonly ColumnIndexArray _columns;
    private readonly float[] _values;
    private SparsityMask? _mask;

    private CsrTensor(int rows, int columns, int[] rowPointers, ColumnIndexArray columnIndices, float[] values, SparsityMask? mask)
        : base(rows, columns)
    {
        _rowPointers = rowPointers;
        _columns = columnIndices;
        _values = values;
        _mask = mask;
    }

    /// <summary>The number of stored elements (non-zeros, or kept weights for <see cref="FromPruned"/>).</summary>
    public int StoredCount => _values.Length;

    /// <summary>Rows + 1 offsets into <see cref="Values"/>: row r holds elements [RowPointers[r], RowPointers[r + 1]).</summary>
    public ReadOnlyMemory<int> RowPointers => _rowPointers;

    /// <summary>Bits per stored column index: 16 when Columns ≤ 65 536, otherwise 32.</summary>
    public int ColumnIndexBits => _columns.Bits;

    /// <summary>The column indices when <see cref="ColumnIndexBits"/> is 16; empty otherwise.</summary>
    public ReadOnlyMemory<ushort> ColumnIndicesUInt16 => _columns.Narrow;

    /// <summary>The column indices when <see cref="ColumnIndexBits"/> is 32; empty otherwise.</summary>
    public ReadOnlyMemory<int> ColumnIndicesInt32 => _columns.Wide;

    /// <summary>The stored values, row by row in increasing column order.</summary>
    public ReadOnlyMemory<float> Values => _values;

    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <inheritdoc/>
    public override long StorageBits => ComputeStorageBits(Rows, Columns, _values.Length);

    /// <summary>The stored positions (a kept exact zero counts as stored).</summary>
    public override SparsityMask SparsityMask => _mask ??= BuildMask();

    /// <summary>The column indices widened to int32 (a copy), whatever their stored width.</summary>
    public int[] GetColumnIndices() => _columns.ToInt32();

    /// <summary>StorageBits of a CSR matrix of this shape with <paramref name="stored"/> elements, without building it.</summary>
    public static long ComputeStorageBits(int rows, int columns, long stored) =>
        32L * (rows + 1) + (ColumnIndexArray.BitsFor(columns) + 32L) * stored;

    /// <summary>
    /// Stores every element of <paramref name="matrix"/> whose bits are not those of +0 (so −0 and NaN are stored and
    /// the round trip is bitwise).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="matrix"/> is not a matrix.</exception>
    public static CsrTensor FromDense(DenseTensor matrix)
    {
        MaskBits.CheckMatrix(matrix, nameof(matrix));
        byte[] bits = MaskBits.NonZero(matrix);
        return Build(matrix.Rows, matrix.Columns, bits, matrix.Span, compactValues: false, mask: null);
    }

    /// <summary>Stores the weights <paramref name="pruned"/> keeps, exact zeros among them included.</summary>
    public static CsrTensor FromPruned(PrunedTensor pruned)
    {
        ArgumentNullException.ThrowIfNull(pruned);
        return Build(pruned.Rows, pruned.Columns, pruned.Mask.ToBytes(), pruned.Values.Span, compactValues: true, pruned.Mask);
    }

    /// <summary>A serializer that also reads CSR tensors.</summary>
    public static CompressedTensorSerializer Register(CompressedTensorSerializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        return serializer.WithKind(KindName, Read);
    }

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination)
    {
        destination.Clear();
        for (int r = 0; r < Rows; r++)
        {
            Span<float> row = destination.Slice(r * Columns, Columns);
            for (int k = _rowPointers[r]; k < _rowPointers[r + 1]; k++)
            {
                row[_columns[k]] = _values[k];
            }
        }
    }

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteTensor<int>("row_pointers", SafetensorsDType.I32, [_rowPointers.Length], _rowPointers);
        _columns.Write(writer, "column_indices");
        writer.WriteTensor<float>("values", SafetensorsDType.F32, [_values.Length], _values);
    }

    internal int[] RowPointerArray => _rowPointers;

    internal ColumnIndexArray ColumnIndexArray => _columns;

    internal float[] ValueArray => _values;

    /// <summary>
    /// Builds the arrays from a row-major bit set: <paramref name="source"/> is either the dense matrix
    /// (<paramref name="compactValues"/> false) or the stored values in row-major order already (true).
    /// </summary>
    private static CsrTensor Build(int rows, int columns, byte[] bits, ReadOnlySpan<float> source, bool compactValues, SparsityMask? mask)
    {
        var pointers = new int[rows + 1];
        long flat = 0;
        for (int r = 0; r < rows; r++)
        {
            int count = 0;
            for (int c = 0; c < columns; c++, flat++)
            {
                if (MaskBits.IsSet(bits, flat))
                {
                    count++;
                }
            }

            pointers[r + 1] = checked(pointers[r] + count);
        }

        int stored = pointers[rows];
        ColumnIndexArray indices = ColumnIndexArray.Allocate(stored, columns);
        var values = new float[stored];
        int k = 0;
        flat = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++, flat++)
            {
                if (MaskBits.IsSet(bits, flat))
                {
                    indices.Set(k, c);
                    values[k] = compactValues ? source[k] : source[(int)flat];
                    k++;
                }
            }
        }

        return new CsrTensor(rows, columns, pointers, indices, values, mask);
    }

    private SparsityMask BuildMask()
    {
        byte[] bits = MaskBits.Allocate(Rows, Columns);
        for (int r = 0; r < Rows; r++)
        {
            for (int k = _rowPointers[r]; k < _rowPointers[r + 1]; k++)
            {
                MaskBits.Set(bits, (long)r * Columns + _columns[k]);
            }
        }

        return SparsityMask.FromBytes(Rows, Columns, bits);
    }

    private static CsrTensor Read(CompressedTensorReader reader)
    {
        int[] pointers = ColumnIndexArray.ReadPointers(reader, "row_pointers", reader.Rows + 1L);
        float[] values = reader.ReadTensor<float>("values", SafetensorsDType.F32, pointers[^1]);
        ColumnIndexArray indices = ColumnIndexArray.Read(reader, "column_indices", values.Length, reader.Columns);
        indices.Validate(reader.Prefix, pointers, reader.Columns);
        return new CsrTensor(reader.Rows, reader.Columns, pointers, indices, values, mask: null);
    }
}
