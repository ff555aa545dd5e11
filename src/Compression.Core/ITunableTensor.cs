// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression;

/// <summary>
/// A compressed representation whose reconstruction Ŵ(θ) depends on continuous parameters θ (scales, low-rank
/// factors, the kept values of a pruned matrix) while its discrete structure (codes, masks, permutations, ranks) stays
/// fixed. Layer-wise reconstruction fits θ so that the layer's outputs on calibration inputs match the original's, then
/// stores the fitted θ with <see cref="WithTunableParameters"/>; codes stay on their grid and masks stay as they were.
/// </summary>
/// <remarks>
/// <para>θ is a flat float32 vector whose order each representation documents. The contract the fitting code relies on,
/// and that every implementation tests against finite differences:</para>
/// <list type="bullet">
/// <item><see cref="Reconstruct"/> with the tensor's own θ equals <see cref="CompressedTensor.DecompressTo"/> bit for bit.</item>
/// <item><see cref="BackpropagateReconstruction"/> is the vector–Jacobian product: given ∂L/∂Ŵ it adds ∂L/∂θ.</item>
/// <item><see cref="WithTunableParameters"/> rounds θ to the storage type (float16 scales, bfloat16 factors) and
/// returns a tensor of the same kind, shape and discrete structure; it never modifies this instance.</item>
/// </list>
/// </remarks>
public interface ITunableTensor
{
    /// <summary>The length of θ; 0 when this instance has nothing continuous to tune (e.g. power-of-two scales).</summary>
    int TunableParameterCount { get; }

    /// <summary>Copies the current θ (as stored) into <paramref name="parameters"/>.</summary>
    /// <exception cref="ArgumentException">The span's length is not <see cref="TunableParameterCount"/>.</exception>
    void GetTunableParameters(Span<float> parameters);

    /// <summary>Writes Ŵ(θ), row-major [rows, columns], for any θ (not rounded to storage).</summary>
    /// <exception cref="ArgumentException">A span has the wrong length.</exception>
    void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight);

    /// <summary>Adds (∂Ŵ/∂θ)ᵀ·<paramref name="weightGradient"/> at θ to <paramref name="parameterGradient"/>.</summary>
    /// <exception cref="ArgumentException">A span has the wrong length.</exception>
    void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient);

    /// <summary>A new tensor of the same kind and discrete structure holding θ rounded to its storage type.</summary>
    /// <exception cref="ArgumentException">The span has the wrong length, or a value cannot be stored (NaN, infinite,
    /// or a scale that is not positive).</exception>
    CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters);
}
