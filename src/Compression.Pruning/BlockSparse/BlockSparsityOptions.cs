// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning;

/// <summary>
/// Options of block-sparse pruning: the block shape, how many blocks go and how a block is scored. Immutable; every
/// property validates when set, and the pruner checks that the block tiles the weight.
/// </summary>
/// <example>
/// <code>
/// var blocks = new BlockSparsityOptions { BlockRows = 32, BlockColumns = 32, Sparsity = 0.75 };
/// PrunedTensor p = blocks.CreateCompressor().Prune(weight);   // 3/4 of the 32×32 tiles zeroed
/// </code>
/// </example>
public sealed record BlockSparsityOptions
{
    /// <summary>Rows of a block, at least 1; must divide the weight's rows. Default 16.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Below 1.</exception>
    public int BlockRows
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(BlockRows), value, "BlockRows must be at least 1.");
    } = 16;

    /// <summary>Columns of a block, at least 1; must divide the weight's columns. Default 16.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Below 1.</exception>
    public int BlockColumns
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(BlockColumns), value, "BlockColumns must be at least 1.");
    } = 16;

    /// <summary>The fraction of blocks pruned, in [0, 1). Default 0.5. Of B blocks exactly <c>round(Sparsity·B)</c> go,
    /// halves to even.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1), or NaN.</exception>
    public double Sparsity
    {
        get;
        init => field = PruningGuards.Sparsity(value, nameof(Sparsity));
    } = 0.5;

    /// <summary>A block's score: the L1 or L2 norm of its weights. Default <see cref="PruningNorm.L2"/>.</summary>
    public PruningNorm Norm
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Norm), value, "Norm must be L1 or L2.");
    } = PruningNorm.L2;

    /// <summary>Creates the pruner.</summary>
    public BlockSparsePruner CreateCompressor() => new(this);
}
