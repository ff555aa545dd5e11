// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning;

/// <summary>
/// Options of structured pruning: which dimension loses channels, how many, how they are scored and how many
/// consecutive rows or columns form one channel. Immutable; every property validates when set, and the pruner checks
/// the rest against the weight's shape.
/// </summary>
/// <example>
/// <code>
/// // Remove a quarter of the 32 heads (head_dim 128) of q_proj, scored by L2 norm:
/// var heads = new StructuredPruningOptions { Sparsity = 0.25, GroupSize = 128 };
/// StructuredPruningResult r = heads.CreateCompressor().Select(qProj);
/// DenseTensor smaller = StructuredPruner.Shrink(qProj, r.KeptIndices, ChannelDimension.OutputChannels);
/// </code>
/// </example>
public sealed record StructuredPruningOptions
{
    /// <summary>Rows (output channels, default) or columns (input channels).</summary>
    public ChannelDimension Dimension
    {
        get;
        init => field = Enum.IsDefined(value)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Dimension), value, "Dimension must be OutputChannels or InputChannels.");
    } = ChannelDimension.OutputChannels;

    /// <summary>The fraction of channels pruned, in [0, 1). Default 0.5. Of C channels exactly
    /// <c>round(Sparsity·C)</c> go, halves to even. Ignored when <see cref="Keep"/> is set.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1), or NaN.</exception>
    public double Sparsity
    {
        get;
        init => field = PruningGuards.Sparsity(value, nameof(Sparsity));
    } = 0.5;

    /// <summary>The number of channels kept, overriding <see cref="Sparsity"/> when set (a target width such as a
    /// hidden size that stays a multiple of 64); null (default) to use <see cref="Sparsity"/>. Must not exceed the
    /// weight's channel count.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative.</exception>
    public int? Keep
    {
        get;
        init => field = value is null or >= 0
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Keep), value, "Keep (channels kept) must not be negative.");
    }

    /// <summary>How a channel is scored. Default <see cref="ChannelScore.L2"/>.</summary>
    public ChannelScore Score
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Score), value, "Score must be L1, L2 or Taylor.");
    } = ChannelScore.L2;

    /// <summary>Consecutive rows or columns that form one channel and are kept or removed together, at least 1:
    /// head_dim for attention heads. Must divide the pruned dimension. Default 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Below 1.</exception>
    public int GroupSize
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(GroupSize), value, "GroupSize must be at least 1.");
    } = 1;

    /// <summary>Creates the pruner.</summary>
    public StructuredPruner CreateCompressor() => new(this);
}
