// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Composition;

/// <summary>A matrix kept as float32: the "no compression" representation (32 bits per weight), used for layers a
/// recipe leaves alone and as the exact baseline in reports.</summary>
public sealed partial class UncompressedTensor : CompressedTensor, ITunableTensor
{
    internal const string KindName = "dense";
    private readonly float[] _values;

    /// <summary>Copies a matrix.</summary>
    public UncompressedTensor(DenseTensor matrix)
        : base(CheckRank(matrix).Rows, matrix.Columns) => _values = matrix.Span.ToArray();

    private UncompressedTensor(int rows, int columns, float[] values)
        : base(rows, columns) => _values = values;

    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <inheritdoc/>
    public override long StorageBits => 32L * _values.Length;

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination) => _values.CopyTo(destination);

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer) =>
        writer.WriteTensor<float>("weight", SafetensorsDType.F32, [Rows, Columns], _values);

    internal static UncompressedTensor Read(CompressedTensorReader reader) =>
        new(reader.Rows, reader.Columns, reader.ReadTensor<float>("weight", SafetensorsDType.F32, reader.Rows, reader.Columns));

    private static DenseTensor CheckRank(DenseTensor matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.Rank != 2)
        {
            throw new ArgumentException($"Expected a matrix (rank 2), got rank {matrix.Rank}.", nameof(matrix));
        }

        return matrix;
    }
}
