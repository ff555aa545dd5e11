// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Calibration;

/// <summary>Options of <see cref="HessianAccumulator"/>. Immutable; derive variants with <c>with</c>.</summary>
public sealed record HessianAccumulatorOptions
{
    /// <summary>Defaults: float64 accumulation, non-finite activations rejected, all cores.</summary>
    public static HessianAccumulatorOptions Default { get; } = new();

    /// <summary>The accumulator's type. Default <see cref="AccumulationPrecision.Double"/>.</summary>
    public AccumulationPrecision Precision
    {
        get;
        init => field = Enum.IsDefined(value)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Precision), value, "Precision must be Double or Single.");
    } = AccumulationPrecision.Double;

    /// <summary>Upper bound on threads used per batch; -1 (default) for all cores. Must be -1 or at least 1.</summary>
    public int MaxDegreeOfParallelism
    {
        get;
        init => field = value == -1 || value >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxDegreeOfParallelism), value, "Must be -1 (all cores) or at least 1.");
    } = -1;
}
