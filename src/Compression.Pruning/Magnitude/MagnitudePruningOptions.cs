// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning;

/// <summary>
/// Options of unstructured magnitude pruning: how many weights go and which weights compete. Immutable; every property
/// validates when set, so <c>with</c> validates too.
/// </summary>
/// <example>
/// <code>
/// var pruner = new MagnitudePruningOptions { Sparsity = 0.5 }.CreateCompressor();
/// PrunedTensor p = pruner.Prune(weight);                       // the smallest half of |w| set to zero
/// var perRow = new MagnitudePruningOptions { Sparsity = 0.5, Scope = PruningScope.PerRow };
/// </code>
/// </example>
public sealed record MagnitudePruningOptions
{
    /// <summary>The fraction of weights pruned in each comparison group, in [0, 1). Default 0.5. A group of n weights
    /// loses exactly <c>round(Sparsity·n)</c> of them, halves rounded to even (Python's <c>round</c>, as in
    /// <c>torch.nn.utils.prune</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1), or NaN.</exception>
    public double Sparsity
    {
        get;
        init => field = PruningGuards.Sparsity(value, nameof(Sparsity));
    } = 0.5;

    /// <summary>The norm of a weight's score. For a single weight L1 and L2 are both <c>|w|</c>, so the masks agree;
    /// the option exists so that one setting reads the same across magnitude, block and structured pruning.
    /// Default <see cref="PruningNorm.L1"/>.</summary>
    public PruningNorm Norm
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Norm), value, "Norm must be L1 or L2.");
    } = PruningNorm.L1;

    /// <summary>Whether the whole layer competes for one threshold or each output row is pruned to the sparsity on
    /// its own. Default <see cref="PruningScope.PerLayer"/>.</summary>
    public PruningScope Scope
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Scope), value, "Scope must be PerLayer or PerRow.");
    } = PruningScope.PerLayer;

    /// <summary>Creates the pruner.</summary>
    public MagnitudePruner CreateCompressor() => new(this);
}
