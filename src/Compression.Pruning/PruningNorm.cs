// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Pruning;

/// <summary>How the weights of one pruning unit (a weight, a block, a channel) are reduced to its score.</summary>
/// <remarks>For a single weight both norms are <c>|w|</c>; they differ for blocks and channels, where L2 favours units
/// holding a few large weights and L1 units holding many moderate ones.</remarks>
public enum PruningNorm
{
    /// <summary>The sum of absolute values, <c>Σ|w|</c>.</summary>
    L1,

    /// <summary>The Euclidean norm, <c>sqrt(Σw²)</c>.</summary>
    L2,
}
