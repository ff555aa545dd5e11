// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.LowRank;

/// <summary>
/// Options of a low-rank factorisation W ≈ A·B: the rank rule, the SVD, activation awareness and the factors' format.
/// Immutable; every property validates when set, so <c>with</c> validates too.
/// </summary>
/// <example>
/// <code>
/// // Plain truncated SVD keeping half the parameters:
/// var svd = new LowRankOptions { Rank = RankRule.ParameterRatio(0.5) }.CreateCompressor();
/// // SVD-LLM: minimise the layer-output error with the input statistics of calibration data.
/// var svdLlm = new LowRankOptions { Rank = RankRule.Fixed(64), Whitening = ActivationWhitening.Cholesky }.CreateCompressor();
/// LowRankTensor f = (LowRankTensor)svdLlm.Compress(weight, new CompressionContext { InputHessian = hessian });
/// </code>
/// </example>
public sealed record LowRankOptions
{
    /// <summary>How many singular triplets are kept. Default: half the parameters (<see cref="RankRule.ParameterRatio"/> 0.5).</summary>
    /// <exception cref="ArgumentNullException">Null.</exception>
    public RankRule Rank
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Rank));
    } = RankRule.ParameterRatio(0.5);

    /// <summary>Which SVD runs. Default <see cref="SvdSolver.Auto"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined value.</exception>
    public SvdSolver Solver
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Solver), value, "Solver must be Auto, Exact or Randomized.");
    }

    /// <summary>Settings of the randomized SVD when it runs. Default <see cref="RandomizedSvdOptions.Default"/>.</summary>
    /// <exception cref="ArgumentNullException">Null.</exception>
    public RandomizedSvdOptions Randomized
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Randomized));
    } = RandomizedSvdOptions.Default;

    /// <summary>Whether and how the input statistics weight the truncation. Default <see cref="ActivationWhitening.None"/>;
    /// any other value requires <see cref="CompressionContext.InputHessian"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined value.</exception>
    public ActivationWhitening Whitening
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Whitening), value, "Whitening must be None, Cholesky or Eigen.");
    }

    /// <summary>Added to H's diagonal before whitening, as a fraction of its mean diagonal, in [0, 1]. Default 0.01
    /// (GPTQ's percdamp): it makes H positive definite when some inputs never vary, and leans the truncation slightly
    /// toward plain SVD.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1] or NaN.</exception>
    public double Dampening
    {
        get;
        init => field = value is >= 0 and <= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Dampening), value, "Dampening must be in [0, 1].");
    } = 0.01;

    /// <summary>The factors' number format. Default <see cref="FactorPrecision.Float32"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined value.</exception>
    public FactorPrecision Precision
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Precision), value, "Precision must be Float32, Float16 or BFloat16.");
    }

    /// <summary>How the singular values are shared between the factors. Default <see cref="FactorSplit.Balanced"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined value.</exception>
    public FactorSplit Split
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Split), value, "Split must be Balanced or SingularValuesLeft.");
    }

    /// <summary>Creates the compressor.</summary>
    public LowRankCompressor CreateCompressor() => new(this);
}
