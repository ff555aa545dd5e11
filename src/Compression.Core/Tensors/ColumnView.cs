// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Tensors;

/// <summary>
/// One column of a row-major matrix: a strided, zero-copy view (element <c>i</c> is <c>storage[offset + i·stride]</c>).
/// </summary>
/// <remarks>Columns of a row-major matrix are not contiguous, so they cannot be spans; copy one out with
/// <see cref="CopyTo"/> when a SIMD routine needs it contiguous.</remarks>
public readonly struct ColumnView
{
    private readonly Memory<float> _storage;
    private readonly int _offset;
    private readonly int _stride;

    internal ColumnView(Memory<float> storage, int offset, int stride, int length)
    {
        _storage = storage;
        _offset = offset;
        _stride = stride;
        Length = length;
    }

    /// <summary>The number of elements (the matrix's rows).</summary>
    public int Length { get; }

    /// <summary>Gets or sets element <paramref name="index"/>; writes go to the underlying matrix.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside [0, <see cref="Length"/>).</exception>
    public float this[int index]
    {
        get => _storage.Span[Offset(index)];
        set => _storage.Span[Offset(index)] = value;
    }

    /// <summary>Copies the column into a contiguous span.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="Length"/>.</exception>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length < Length)
        {
            ThrowHelper.ThrowDestinationTooShort(nameof(destination), Length, destination.Length);
        }

        ReadOnlySpan<float> storage = _storage.Span;
        for (int i = 0; i < Length; i++)
        {
            destination[i] = storage[_offset + i * _stride];
        }
    }

    /// <summary>Overwrites the column with <paramref name="source"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="source"/> length differs from <see cref="Length"/>.</exception>
    public void CopyFrom(ReadOnlySpan<float> source)
    {
        if (source.Length != Length)
        {
            ThrowHelper.ThrowArgument(nameof(source), $"Column has {Length} elements; {source.Length} given.");
        }

        Span<float> storage = _storage.Span;
        for (int i = 0; i < Length; i++)
        {
            storage[_offset + i * _stride] = source[i];
        }
    }

    /// <summary>A contiguous copy of the column.</summary>
    public float[] ToArray()
    {
        var result = new float[Length];
        CopyTo(result);
        return result;
    }

    private int Offset(int index)
    {
        if ((uint)index >= (uint)Length)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(index), index, $"Index must lie in [0, {Length}).");
        }

        return _offset + index * _stride;
    }
}
