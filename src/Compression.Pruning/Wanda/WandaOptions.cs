// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning;

/// <summary>
/// Options of Wanda (pruning by Weights and activations; Sun, Liu, Bair and Kolter, "A Simple and Effective Pruning
/// Approach for Large Language Models", 2023): the sparsity and the comparison group. Immutable; every property
/// validates when set.
/// </summary>
/// <example>
/// <code>
/// var unstructured = new WandaOptions { Sparsity = 0.5 };                  // per output row, as in the paper
/// var twoFour = new WandaOptions { NofM = NofMOptions.TwoOfFour };         // activation-aware 2:4
/// </code>
/// </example>
public sealed record WandaOptions
{
    /// <summary>The fraction of weights pruned in each comparison group, in [0, 1). Default 0.5. A group of n weights
    /// loses exactly <c>round(Sparsity·n)</c>, halves to even. Ignored when <see cref="NofM"/> is set.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1), or NaN.</exception>
    public double Sparsity
    {
        get;
        init => field = PruningGuards.Sparsity(value, nameof(Sparsity));
    } = 0.5;

    /// <summary>The comparison group of unstructured pruning. Default <see cref="PruningScope.PerRow"/>: the paper
    /// compares weights within each output row, which it finds clearly better for LLMs than a per-layer threshold.</summary>
    public PruningScope Scope
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Scope), value, "Scope must be PerLayer or PerRow.");
    } = PruningScope.PerRow;

    /// <summary>An N:M pattern instead of unstructured pruning (the groups of M along each row are the comparison
    /// groups; <see cref="Sparsity"/> and <see cref="Scope"/> are then ignored); null (default) for unstructured.</summary>
    public NofMOptions? NofM { get; init; }

    /// <summary>Creates the pruner.</summary>
    public WandaPruner CreateCompressor() => new(this);
}
