// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// The learning rate of each optimizer step as a multiple of the peak: a linear warm-up, then a constant, linear or
/// cosine decay, as Hugging Face's <c>get_{constant,linear,cosine}_schedule_with_warmup</c> (the warm-up here starts at
/// 1/W of the peak rather than at 0, so no step is wasted). Immutable.
/// </summary>
/// <remarks>
/// For step t = 0, 1, …, T − 1 of T steps and W warm-up steps, the multiplier is (t + 1)/W while t &lt; W; afterwards,
/// with progress p = (t − W)/(T − W) in [0, 1), it is 1 (constant), m + (1 − m)(1 − p) (linear) or
/// m + (1 − m)·(1 + cos πp)/2 (cosine), m being <see cref="MinimumRatio"/>. The multiplier depends on t alone, so the
/// <see cref="Distiller"/> sets it on the optimizer before every step and a resumed run takes exactly the rates of an
/// uninterrupted one.
/// </remarks>
public sealed record LearningRateSchedule
{
    /// <summary>No warm-up, constant rate.</summary>
    public static LearningRateSchedule Constant { get; } = new();

    /// <summary>How the rate falls after the warm-up. Default: <see cref="LearningRateDecay.Constant"/>.</summary>
    public LearningRateDecay Decay { get; init; } = LearningRateDecay.Constant;

    /// <summary>Steps of linear warm-up (0 for none). Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative.</exception>
    public int WarmupSteps
    {
        get;
        init => field = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(WarmupSteps), value, "The warm-up must be 0 or more steps.");
    }

    /// <summary>The multiplier the decay tends to at the last step, in [0, 1]. Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1] or NaN.</exception>
    public double MinimumRatio
    {
        get;
        init => field = value is >= 0 and <= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(MinimumRatio), value, "The minimum ratio must be in [0, 1].");
    }

    /// <summary>The multiplier of the peak rate at step <paramref name="step"/> (0-based) of <paramref name="steps"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="steps"/> is not positive or <paramref name="step"/> is
    /// outside [0, steps).</exception>
    public double Multiplier(int step, int steps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(step, steps);
        if (step < WarmupSteps)
        {
            return (step + 1.0) / WarmupSteps;
        }

        double progress = (double)(step - WarmupSteps) / (steps - WarmupSteps);
        return Decay switch
        {
            LearningRateDecay.Linear => MinimumRatio + (1 - MinimumRatio) * (1 - progress),
            LearningRateDecay.Cosine => MinimumRatio + (1 - MinimumRatio) * 0.5 * (1 + Math.Cos(Math.PI * progress)),
            _ => 1.0,
        };
    }
}
