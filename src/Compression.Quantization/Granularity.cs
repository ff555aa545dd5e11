// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization;

/// <summary>Which weights share one scale. A closed set: switch on it.</summary>
public abstract record Granularity
{
    private protected Granularity()
    {
    }

    /// <summary>One scale for the whole matrix.</summary>
    public static Granularity PerTensor { get; } = new PerTensorGranularity();

    /// <summary>One scale per output row.</summary>
    public static Granularity PerChannel { get; } = new PerChannelGranularity();

    /// <summary>One scale per <paramref name="size"/> consecutive weights of a row; the last group of a row holds
    /// the remaining <c>columns mod size</c> weights when <paramref name="size"/> does not divide the row.</summary>
    public static Granularity PerGroup(int size) => new PerGroupGranularity(size);

    /// <summary>One scale per <paramref name="rows"/> × <paramref name="columns"/> tile (e.g. 128×128 FP8 blocks); edge
    /// tiles are smaller.</summary>
    public static Granularity PerBlock(int rows, int columns) => new PerBlockGranularity(rows, columns);
}

/// <summary>One scale for the whole matrix.</summary>
public sealed record PerTensorGranularity : Granularity
{
    /// <inheritdoc/>
    public override string ToString() => "per-tensor";
}

/// <summary>One scale per output row.</summary>
public sealed record PerChannelGranularity : Granularity
{
    /// <inheritdoc/>
    public override string ToString() => "per-channel";
}

/// <summary>One scale per <see cref="Size"/> consecutive weights of a row.</summary>
public sealed record PerGroupGranularity : Granularity
{
    /// <summary>Creates the granularity.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not positive.</exception>
    public PerGroupGranularity(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Size = size;
    }

    /// <summary>Weights per group along the input dimension.</summary>
    public int Size { get; }

    /// <inheritdoc/>
    public override string ToString() => $"group-{Size}";
}

/// <summary>One scale per <see cref="Rows"/> × <see cref="Columns"/> tile.</summary>
public sealed record PerBlockGranularity : Granularity
{
    /// <summary>Creates the granularity.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A side is not positive.</exception>
    public PerBlockGranularity(int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        Rows = rows;
        Columns = columns;
    }

    /// <summary>Tile height (output rows).</summary>
    public int Rows { get; }

    /// <summary>Tile width (input columns).</summary>
    public int Columns { get; }

    /// <inheritdoc/>
    public override string ToString() => $"block-{Rows}x{Columns}";
}
