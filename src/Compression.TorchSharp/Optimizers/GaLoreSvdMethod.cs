// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.TorchSharp.Optimizers;

/// <summary>How a projection refresh finds the top-r singular vectors of the gradient.</summary>
public enum GaLoreSvdMethod
{
    /// <summary>The full thin SVD (<c>torch.linalg.svd</c>), truncated to r vectors: exact, O(m·n·min(m, n)).</summary>
    Exact,

    /// <summary>A seeded randomized range finder with power iterations followed by a small exact SVD (Halko, Martinsson
    /// and Tropp, "Finding structure with randomness", 2011): O(m·n·r), accurate when the spectrum decays. Seeded by
    /// <see cref="GaLoreOptions.Seed"/>; falls back to <see cref="Exact"/> when r + 10 ≥ min(m, n), where the sketch
    /// would be as large as the matrix.</summary>
    Randomized,
}
