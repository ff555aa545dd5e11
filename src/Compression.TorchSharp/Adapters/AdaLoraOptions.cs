// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.TorchSharp.Adapters;

/// <summary>
/// AdaLoRA's budget schedule and importance smoothing (Zhang et al., "Adaptive Budget Allocation for Parameter-Efficient
/// Fine-Tuning", ICLR 2023), with PEFT's names in the comments. The initial rank per layer is <see cref="LoraOptions.Rank"/>.
/// </summary>
/// <remarks>The total budget b(t) stays at the initial total rank for <see cref="InitialWarmup"/> steps, falls as
/// b_T + (b_0 − b_T)·(1 − (t − t_i)/(T − t_i − t_f))³ and holds the target total rank for the last
/// <see cref="FinalWarmup"/> steps.</remarks>
public sealed record AdaLoraOptions
{
    /// <summary>The average rank per layer at the end (<c>target_r</c>); the target total is this times the number of
    /// adapted layers. At least 1 (and at most the initial rank, checked when the allocator is built). Default 4.</summary>
    public int TargetRank
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(TargetRank), value, "The target rank must be at least 1.");
    } = 4;

    /// <summary>The total number of training steps T (<c>total_step</c>); greater than the two warm-ups together. Default 1000.</summary>
    public int TotalSteps
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(TotalSteps), value, "The total number of steps must be at least 1.");
    } = 1000;

    /// <summary>Steps before any pruning, t_i (<c>tinit</c>); at least 0. Default 0.</summary>
    public int InitialWarmup
    {
        get;
        init => field = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(InitialWarmup), value, "The initial warm-up must be at least 0.");
    }

    /// <summary>Steps at the end with the final mask fixed, t_f (<c>tfinal</c>); at least 0. Default 0.</summary>
    public int FinalWarmup
    {
        get;
        init => field = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(FinalWarmup), value, "The final warm-up must be at least 0.");
    }

    /// <summary>Steps between two mask updates during the budget phase, ΔT (<c>deltaT</c>); at least 1. Default 1.</summary>
    public int MaskInterval
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(MaskInterval), value, "The mask interval must be at least 1.");
    } = 1;

    /// <summary>EMA coefficient of the sensitivity, β₁ (<c>beta1</c>), in [0, 1). Default 0.85.</summary>
    public double Beta1
    {
        get;
        init => field = value >= 0 && value < 1 ? value : throw new ArgumentOutOfRangeException(nameof(Beta1), value, "Beta1 must be in [0, 1).");
    } = 0.85;

    /// <summary>EMA coefficient of the uncertainty, β₂ (<c>beta2</c>), in [0, 1). Default 0.85.</summary>
    public double Beta2
    {
        get;
        init => field = value >= 0 && value < 1 ? value : throw new ArgumentOutOfRangeException(nameof(Beta2), value, "Beta2 must be in [0, 1).");
    } = 0.85;

    /// <summary>Weight γ of the orthogonality regulariser in the loss (<c>orth_reg_weight</c>); finite and ≥ 0. Default 0.5.</summary>
    public double OrthogonalityWeight
    {
        get;
        init => field = double.IsFinite(value) && value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(OrthogonalityWeight), value, "The weight must be finite and at least 0.");
    } = 0.5;

    internal void Validate()
    {
        if (InitialWarmup + FinalWarmup >= TotalSteps)
        {
            throw new ArgumentException($"InitialWarmup ({InitialWarmup}) + FinalWarmup ({FinalWarmup}) must be less than TotalSteps ({TotalSteps}): no step would be left for the budget to fall.", "options");
        }
    }
}
