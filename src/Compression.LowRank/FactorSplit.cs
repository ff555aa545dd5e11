// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.LowRank;

/// <summary>How the singular values are shared between the two factors of W ≈ A·B.</summary>
public enum FactorSplit
{
    /// <summary>A = U_r·Σ_r^½, B = Σ_r^½·V_rᵀ: both factors on the same scale, best for storing them in 16 bits.</summary>
    Balanced,

    /// <summary>A = U_r·Σ_r, B = V_rᵀ: B has orthonormal rows (the input projection of a LoRA-style pair).</summary>
    SingularValuesLeft,
}
