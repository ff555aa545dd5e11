// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization;

/// <summary>
/// Shrinks each group's range before quantizing when that lowers the reconstruction error, as the reference GPTQ
/// code's <c>mse</c> option does: try ranges p·[min, max] for p = 1, 1 − 1/<see cref="Grid"/>, … down to
/// 1 − <see cref="MaxShrink"/>, keep the one with the smallest Σ|x − dq(q(x))|^<see cref="Norm"/>.
/// </summary>
/// <remarks>
/// Integer formats search the range itself. FP, MX and NVFP4 formats search their own scales (the format-specific
/// scale search of MR-GPTQ, as far as the paper's text specifies it): the scale the format chooses, the next scale it
/// can store above that (MX: twice the power of two; NVFP4: the next E4M3 value, since rounding the scale down can
/// saturate a block's largest element), and the scales it chooses for the shrunk ranges, each distinct scale once,
/// in that order; the least error wins, the format's own choice on ties. NF4 and ternary formats do not take it.
/// </remarks>
public sealed record ClippingSearch
{
    /// <summary>The reference code's settings: grid 100, max shrink 0.8, norm 2.4.</summary>
    public static ClippingSearch Default { get; } = new();

    /// <summary>Steps per unit of shrink. Default 100; at least 1.</summary>
    public int Grid
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Grid), value, "Grid must be at least 1.");
    } = 100;

    /// <summary>The largest fraction the range may shrink by, in (0, 1). Default 0.8.</summary>
    public double MaxShrink
    {
        get;
        init => field = value is > 0 and < 1 ? value : throw new ArgumentOutOfRangeException(nameof(MaxShrink), value, "MaxShrink must lie in (0, 1).");
    } = 0.8;

    /// <summary>The exponent of the error norm, positive. Default 2.4.</summary>
    public double Norm
    {
        get;
        init => field = value > 0 && double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(nameof(Norm), value, "Norm must be positive.");
    } = 2.4;
}
