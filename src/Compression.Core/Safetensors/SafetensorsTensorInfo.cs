// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;

namespace Compression.Safetensors;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The tensor's key, e.g. <c>model.layers.0.self_attn.q_proj.weight</c>.</param>
/// <param name="DType">The element type.</param>
/// <param name="Shape">The dimensions, outermost first (empty for a scalar).</param>
/// <param name="DataBegin">Offset of the first byte, relative to the start of the data section.</param>
/// <param name="DataEnd">Offset one past the last byte, relative to the start of the data section.</param>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, IReadOnlyList<long> Shape, long DataBegin, long DataEnd)
{
    /// <summary>The number of elements (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (product, dimension) => product * dimension);

    /// <summary>The number of bytes of data.</summary>
    public long ByteLength => DataEnd - DataBegin;

    /// <summary>The shape as <see cref="int"/> dimensions, for <see cref="Tensors.DenseTensor"/>.</summary>
    /// <exception cref="NotSupportedException">A dimension or the element count exceeds what one array holds.</exception>
    public int[] GetInt32Shape()
    {
        if (ElementCount > Array.MaxLength || Shape.Any(d => d > int.MaxValue))
        {
            throw new NotSupportedException(
                $"Tensor '{Name}' has {ElementCount} elements; read it in slices with SafetensorsFile.GetBytes(name, offset, count).");
        }

        return Shape.Select(d => (int)d).ToArray();
    }

    /// <inheritdoc/>
    public bool Equals(SafetensorsTensorInfo? other) =>
        other is not null && Name == other.Name && DType == other.DType && Shape.SequenceEqual(other.Shape) &&
        DataBegin == other.DataBegin && DataEnd == other.DataEnd;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Name, DType, Shape.Count, DataBegin, DataEnd);
}
