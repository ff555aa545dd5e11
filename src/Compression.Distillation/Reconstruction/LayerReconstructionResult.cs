// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Distillation;

/// <summary>
/// What one layer-wise reconstruction fit achieved. Errors are relative output errors
/// <c>E = tr((W − Ŵ)·H·(W − Ŵ)ᵀ) / tr(W·H·Wᵀ)</c> with the dampened H the fit used; with
/// <see cref="LayerReconstructionOptions.Dampening"/> 0 and <c>H ∝ XᵀX</c> this is
/// <c>‖X·Wᵀ − X·Ŵᵀ‖²_F / ‖X·Wᵀ‖²_F</c> on the calibration inputs X.
/// </summary>
/// <param name="Tensor">The representation to use: the fitted one, or the inner result when
/// <see cref="KeptInner"/>.</param>
/// <param name="InitialError">E of the inner compressor's result (the starting θ).</param>
/// <param name="FittedError">E at the fitted θ in float32, before rounding to the storage type.</param>
/// <param name="StoredError">E of the fitted θ rounded to storage (<see cref="ITunableTensor.WithTunableParameters"/>);
/// NaN when the representation refused the fitted values.</param>
/// <param name="FinalError">E of <see cref="Tensor"/>: <see cref="StoredError"/>, or <see cref="InitialError"/> when the
/// inner result was kept.</param>
/// <param name="KeptInner">Whether <see cref="Tensor"/> is the inner result, because the rounded fit did not lower E (and
/// <see cref="LayerReconstructionOptions.KeepInnerUnlessImproved"/> is set) or the representation refused the values.</param>
/// <param name="ParameterCount">The length of θ.</param>
/// <param name="Iterations">L-BFGS iterations run (accepted steps).</param>
/// <param name="Evaluations">Objective and gradient evaluations, line searches included.</param>
/// <param name="Stop">Why the fit stopped.</param>
/// <param name="Elapsed">Wall-clock time of the fit (not of the inner compressor).</param>
public sealed record LayerReconstructionResult(
    CompressedTensor Tensor,
    double InitialError,
    double FittedError,
    double StoredError,
    double FinalError,
    bool KeptInner,
    int ParameterCount,
    int Iterations,
    int Evaluations,
    LayerReconstructionStop Stop,
    TimeSpan Elapsed);
