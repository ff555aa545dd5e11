// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression;

/// <summary>
/// One compressed weight matrix: its storage, the way back to a dense matrix, and its serialized form.
/// Quantized, sparse and low-rank representations all derive from it; <see cref="Composition.ResidualTensor"/>
/// combines two.
/// </summary>
public abstract class CompressedTensor
{
    /// <summary>Sets the logical shape.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is negative.</exception>
    protected CompressedTensor(int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        Rows = rows;
        Columns = columns;
    }

    /// <summary>A stable identifier of the representation, written to checkpoints ("dense", "residual", "quantized", …).</summary>
    public abstract string Kind { get; }

    /// <summary>Output features of the reconstructed matrix.</summary>
    public int Rows { get; }

    /// <summary>Input features of the reconstructed matrix.</summary>
    public int Columns { get; }

    /// <summary>Rows × Columns.</summary>
    public long ElementCount => (long)Rows * Columns;

    /// <summary>All storage in bits: codes, scales, zero points, masks, indices and factors included.</summary>
    public abstract long StorageBits { get; }

    /// <summary>Storage per logical weight, the figure papers compare (e.g. 4.25 for INT4 with FP16 scales per 64).</summary>
    public double BitsPerWeight => ElementCount == 0 ? 0 : (double)StorageBits / ElementCount;

    /// <summary>Which weights are structurally zero, for representations that have a mask (pruned ones); otherwise null.</summary>
    public virtual SparsityMask? SparsityMask => null;

    /// <summary>Writes the dense approximation, row-major, into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> length differs from Rows × Columns.</exception>
    public void DecompressTo(Span<float> destination)
    {
        if (destination.Length != ElementCount)
        {
            throw new ArgumentException($"Destination has {destination.Length} elements; {Rows}×{Columns} = {ElementCount} are needed.",
                nameof(destination));
        }

        DecompressCore(destination);
    }

    /// <summary>The dense approximation as a new [Rows, Columns] tensor.</summary>
    public DenseTensor Decompress()
    {
        var tensor = new DenseTensor(Rows, Columns);
        DecompressCore(tensor.Span);
        return tensor;
    }

    /// <summary>Writes the dense approximation; <paramref name="destination"/> has exactly Rows × Columns elements.</summary>
    protected abstract void DecompressCore(Span<float> destination);

    /// <summary>Writes this representation's tensors and attributes (see <see cref="CompressedTensorSerializer"/>).</summary>
    protected abstract void WriteTo(CompressedTensorWriter writer);

    /// <summary>The serializer's way in (protected members cannot be called from another class).</summary>
    internal void Serialize(CompressedTensorWriter writer) => WriteTo(writer);
}
