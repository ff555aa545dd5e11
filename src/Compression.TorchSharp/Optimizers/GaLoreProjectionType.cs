// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.TorchSharp.Optimizers;

/// <summary>Which side of an m×n gradient G is projected onto the rank-r subspace.</summary>
public enum GaLoreProjectionType
{
    /// <summary>The smaller side, as the GaLore paper does: left (R = PᵀG, r×n) when m ≤ n, right (R = G·Q, m×r)
    /// otherwise. This keeps the projection matrix on the short side and the moments on the long one, which is the
    /// cheaper of the two layouts (m·r + 2·n·r with m ≤ n).</summary>
    Auto,

    /// <summary>Always left: P (m×r) holds the top-r left singular vectors of G and R = PᵀG (r×n).</summary>
    Left,

    /// <summary>Always right: Q (n×r) holds the top-r right singular vectors of G and R = G·Q (m×r).</summary>
    Right,
}
