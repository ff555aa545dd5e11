// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.LowRank;

/// <summary>
/// Whether a factorisation minimises the weight error ‖W − Ŵ‖ or the layer-output error ‖(W − Ŵ)·Xᵀ‖, and how the
/// input statistics H = XᵀX are factored to do the latter. Both whitened forms reach the same optimum (any S with
/// S·Sᵀ = H gives ‖Δ·S‖ = ‖Δ·Xᵀ‖); they differ in cost and in how a singular H is handled.
/// </summary>
public enum ActivationWhitening
{
    /// <summary>Plain truncated SVD of W: data-free.</summary>
    None,

    /// <summary>SVD of W·L with H = L·Lᵀ (Cholesky), as SVD-LLM; ≈ n³/3 flops. A singular H needs
    /// <see cref="LowRankOptions.Dampening"/> &gt; 0.</summary>
    Cholesky,

    /// <summary>SVD of W·Q·Λ^½ with H = Q·Λ·Qᵀ (eigendecomposition), as EoRA's projection into the activations'
    /// eigenspace; several times the Cholesky's cost, but eigenvalues below the dampening floor are clamped rather than
    /// failing.</summary>
    Eigen,
}
