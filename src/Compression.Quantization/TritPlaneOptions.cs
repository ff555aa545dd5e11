// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization;

/// <summary>Options of <see cref="TritPlaneQuantizer"/>. Immutable; validated when set.</summary>
public sealed record TritPlaneOptions
{
    /// <summary>Two planes, up to 20 alternating rounds.</summary>
    public static TritPlaneOptions Default { get; } = new();

    /// <summary>Ternary planes summed, 1 to 4. Default 2 (PTQTP); each plane adds 1.6 bits and one float per row.</summary>
    public int Planes
    {
        get;
        init => field = value is >= 1 and <= 4 ? value : throw new ArgumentOutOfRangeException(nameof(Planes), value, "Planes must lie in [1, 4].");
    } = 2;

    /// <summary>Upper bound on alternating rounds (scales, then codes); stops earlier when no code changes. Default 20, at least 1.</summary>
    public int MaxIterations
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(MaxIterations), value, "MaxIterations must be at least 1.");
    } = 20;

    /// <summary>Creates the quantizer.</summary>
    public TritPlaneQuantizer CreateCompressor() => new(this);
}
