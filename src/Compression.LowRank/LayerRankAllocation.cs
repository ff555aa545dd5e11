// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.LowRank;

/// <summary>The rank a global allocation gave one layer.</summary>
/// <param name="Name">The layer's name.</param>
/// <param name="Rank">The rank to factorise it to, or null to keep it dense (a factorisation would not save
/// parameters: r·(m + n) ≥ m·n).</param>
/// <param name="Parameters">Parameters it holds after the allocation: r·(m + n), or m·n when dense.</param>
/// <param name="RetainedEnergy">The share of its squared singular values kept (1 when dense).</param>
public sealed record LayerRankAllocation(string Name, int? Rank, long Parameters, double RetainedEnergy);
