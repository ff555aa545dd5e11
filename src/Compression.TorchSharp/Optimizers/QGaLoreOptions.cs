// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.TorchSharp.Optimizers;

/// <summary>
/// The Q-GaLore additions to <see cref="GaLoreOptions"/> (Zhang et al., "Q-GaLore: Quantized GaLore with INT4
/// Projection and Layer-Adaptive Low-Rank Gradients", 2024): projection matrices held in INT4 with symmetric scales,
/// and a lazy, layer-wise subspace refresh.
/// </summary>
/// <remarks>
/// Only the optimizer-side parts of Q-GaLore are here; the INT8 weights with stochastic rounding are not.
/// <para>Lazy refresh: after every refresh the new projection is compared with the one it replaces (mean over the r
/// columns of |cos|, so a sign flip of a singular vector, which SVD leaves arbitrary, does not count as a change).
/// When that similarity is at least <see cref="CosineThreshold"/> for <see cref="Patience"/> refreshes in a row, the
/// layer's refresh gap is multiplied by <see cref="GapGrowth"/>: a layer whose subspace has settled stops paying for
/// SVDs, while the others keep the base gap.</para>
/// </remarks>
public sealed record QGaLoreOptions
{
    /// <summary>Elements that share one scale, taken along each column of the projection matrix (each column is one
    /// singular vector). 0, the default, means one scale per column. Default 0.</summary>
    public int GroupSize { get; init; }

    /// <summary>Similarity at or above which a refresh counts as "the subspace did not move". In (0, 1]; default 0.4
    /// (Q-GaLore's setting).</summary>
    public double CosineThreshold { get; init; } = 0.4;

    /// <summary>Refreshes in a row above the threshold before the layer's gap grows. At least 1; default 5.</summary>
    public int Patience { get; init; } = 5;

    /// <summary>Factor applied to a settled layer's refresh gap. At least 1 (1 turns the lazy refresh off); default 2.</summary>
    public int GapGrowth { get; init; } = 2;

    /// <summary>Checks every value.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is outside its documented range.</exception>
    public void Validate()
    {
        if (GroupSize < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(GroupSize), GroupSize, "GroupSize must be 0 (one scale per column) or positive.");
        }

        if (!(CosineThreshold > 0 && CosineThreshold <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(CosineThreshold), CosineThreshold, "CosineThreshold must lie in (0, 1].");
        }

        if (Patience < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Patience), Patience, "Patience must be at least 1 refresh.");
        }

        if (GapGrowth < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(GapGrowth), GapGrowth, "GapGrowth must be at least 1 (1 disables the lazy refresh).");
        }
    }
}
