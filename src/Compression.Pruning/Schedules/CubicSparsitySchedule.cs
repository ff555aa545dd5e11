// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning;

/// <summary>
/// The gradual pruning schedule of Zhu and Gupta ("To prune, or not to prune: exploring the efficacy of pruning for
/// model compression", 2017): sparsity rises from <see cref="InitialSparsity"/> to <see cref="FinalSparsity"/> between
/// <see cref="StartStep"/> and <see cref="EndStep"/> along a cubic, fast at first while the network has redundant
/// weights to spare and slowly at the end, pruning every <see cref="Frequency"/> steps.
/// </summary>
/// <remarks>
/// <para><c>s(t) = s_f + (s_i − s_f)·(1 − (t − t₀)/(nΔt))³</c> with <c>t₀ = StartStep</c>, <c>nΔt = EndStep − StartStep</c>
/// and t clamped to [t₀, t₀ + nΔt]: <c>s_i</c> before the start, <c>s_f</c> after the end.</para>
/// <para>Framework-free: a training loop asks <see cref="ShouldPrune"/> at each step and, when true, prunes each layer to
/// <see cref="SparsityAt"/> (a magnitude pruner with that sparsity, for example), then keeps pruned weights at zero
/// until the next pruning step. Immutable; properties validate when set; the order of the steps is checked when the
/// schedule is used (<see cref="Validate"/>), since the setters run in either order.</para>
/// </remarks>
/// <example>
/// <code>
/// var schedule = new CubicSparsitySchedule { FinalSparsity = 0.8, StartStep = 1000, EndStep = 11000, Frequency = 100 };
/// for (long step = 0; step &lt; steps; step++)
/// {
///     Train(step);
///     if (schedule.ShouldPrune(step))
///     {
///         var pruner = new MagnitudePruningOptions { Sparsity = schedule.SparsityAt(step) }.CreateCompressor();
///         // prune every layer with it and keep the masks
///     }
/// }
/// </code>
/// </example>
public sealed record CubicSparsitySchedule
{
    /// <summary>s_i, the sparsity at and before <see cref="StartStep"/>, in [0, 1). Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1), or NaN.</exception>
    public double InitialSparsity
    {
        get;
        init => field = PruningGuards.Sparsity(value, nameof(InitialSparsity));
    }

    /// <summary>s_f, the sparsity at and after <see cref="EndStep"/>, in [0, 1). Required.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1), or NaN.</exception>
    public required double FinalSparsity
    {
        get;
        init => field = PruningGuards.Sparsity(value, nameof(FinalSparsity));
    }

    /// <summary>t₀, the first pruning step, non-negative. Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative.</exception>
    public long StartStep
    {
        get;
        init => field = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(StartStep), value, "StartStep must not be negative.");
    }

    /// <summary>t₀ + nΔt, the step at which <see cref="FinalSparsity"/> is reached; at least <see cref="StartStep"/>
    /// (equal: one-shot pruning at that step). Required.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative.</exception>
    public required long EndStep
    {
        get;
        init => field = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(EndStep), value, "EndStep must not be negative.");
    }

    /// <summary>Δt, steps between pruning steps, at least 1. Default 100 (the paper prunes every 100 to 1000 steps so
    /// the network recovers in between).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Below 1.</exception>
    public long Frequency
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Frequency), value, "Frequency must be at least 1.");
    } = 100;

    /// <summary>Checks what the setters cannot check alone: <see cref="EndStep"/> ≥ <see cref="StartStep"/>.</summary>
    /// <exception cref="ArgumentException">EndStep is before StartStep.</exception>
    public void Validate()
    {
        if (EndStep < StartStep)
        {
            throw new ArgumentException($"EndStep ({EndStep}) must not be before StartStep ({StartStep}).", nameof(EndStep));
        }
    }

    /// <summary>The target sparsity at <paramref name="step"/>: the cubic, with the step clamped to [StartStep, EndStep].</summary>
    /// <exception cref="ArgumentException">EndStep is before StartStep.</exception>
    public double SparsityAt(long step)
    {
        Validate();
        if (step <= StartStep)
        {
            return step < StartStep || EndStep > StartStep ? InitialSparsity : FinalSparsity;
        }

        if (step >= EndStep)
        {
            return FinalSparsity;
        }

        double remaining = 1 - (double)(step - StartStep) / (EndStep - StartStep);
        return FinalSparsity + (InitialSparsity - FinalSparsity) * remaining * remaining * remaining;
    }

    /// <summary>
    /// Whether a training loop prunes at <paramref name="step"/>: every <see cref="Frequency"/> steps from
    /// <see cref="StartStep"/> up to <see cref="EndStep"/>, and at <see cref="EndStep"/> itself, so the final sparsity is
    /// reached even when the span is not a multiple of the frequency.
    /// </summary>
    /// <exception cref="ArgumentException">EndStep is before StartStep.</exception>
    public bool ShouldPrune(long step)
    {
        Validate();
        return step >= StartStep && step <= EndStep && ((step - StartStep) % Frequency == 0 || step == EndStep);
    }
}
