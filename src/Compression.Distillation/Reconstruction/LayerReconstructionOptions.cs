// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Distillation;

/// <summary>
/// Options of layer-wise reconstruction (<see cref="LayerReconstructor"/>): how long L-BFGS runs, how much curvature
/// it remembers, how the input Hessian is dampened and what happens when the fit does not pay off after rounding.
/// Immutable; every property validates when set, so <c>with</c> validates too.
/// </summary>
/// <example>
/// <code>
/// var options = LayerReconstructionOptions.Default with { MaxIterations = 500, Dampening = 0 };
/// var compressor = new ReconstructingCompressor(new RoundToNearestQuantizer(RtnOptions.W4Group128), options);
/// </code>
/// </example>
public sealed record LayerReconstructionOptions
{
    /// <summary>The defaults: 200 iterations, relative tolerance 1e-6, history 10, dampening 0.01, keep the inner result
    /// when the fit does not help.</summary>
    public static LayerReconstructionOptions Default { get; } = new();

    /// <summary>L-BFGS iterations at most (each one line search). Default 200; in [1, 100 000].</summary>
    public int MaxIterations
    {
        get;
        init => field = value is >= 1 and <= 100_000
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxIterations), value, "MaxIterations must lie in [1, 100000].");
    } = 200;

    /// <summary>
    /// The fit stops when an iteration lowers the relative output error E by less than this fraction of E
    /// (<c>E_k − E_{k+1} ≤ tol·E_k</c>). Default 1e-6; in [0, 1). Zero runs until <see cref="MaxIterations"/> or until no
    /// step along the search direction lowers E any more (float32 parameters have converged).
    /// </summary>
    public double RelativeTolerance
    {
        get;
        init => field = value is >= 0 and < 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(RelativeTolerance), value, "RelativeTolerance must lie in [0, 1).");
    } = 1e-6;

    /// <summary>Correction pairs L-BFGS keeps for its inverse-Hessian model. Default 10; in [1, 100].</summary>
    public int History
    {
        get;
        init => field = value is >= 1 and <= 100
            ? value
            : throw new ArgumentOutOfRangeException(nameof(History), value, "History must lie in [1, 100].");
    } = 10;

    /// <summary>
    /// λ as a fraction of the mean diagonal of H, added to H's diagonal in the objective (GPTQ's <c>percdamp</c>): the
    /// fit then also keeps Ŵ near W on inputs the calibration data barely excites, which guards against over-fitting a
    /// rank-deficient H. Default 0.01; in [0, 1]; 0 fits the calibration inputs exactly.
    /// </summary>
    public double Dampening
    {
        get;
        init => field = value is >= 0 and <= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Dampening), value, "Dampening must lie in [0, 1].");
    } = 0.01;

    /// <summary>
    /// When the fitted parameters, rounded to their storage type, do not lower the objective below the inner
    /// compressor's result, return the inner result unchanged (default true). False returns the rounded fit regardless.
    /// </summary>
    public bool KeepInnerUnlessImproved { get; init; } = true;
}
