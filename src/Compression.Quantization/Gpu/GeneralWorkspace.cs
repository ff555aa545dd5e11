// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Quantization.Gpu;

/// <summary>
/// Where the general kernels keep their intermediate results in the workspace, in floats: per-segment float64 sums of
/// |w| (two floats each, first so that they stay 8-byte aligned), per-segment max |w|, min and max, per-group
/// thresholds (TWN), NF4's second-level scales and offset, and the overflow flag with the offending scale.
/// </summary>
internal readonly record struct GeneralWorkspace(int Segments, int Groups)
{
    public int AbsMax => 2 * Segments;

    public int Thresholds => 5 * Segments;

    public int SecondScaleCount => (Groups + DoubleQuantization.BlockSize - 1) / DoubleQuantization.BlockSize;

    public int SecondScales => Thresholds + Groups;

    public int Offset => SecondScales + SecondScaleCount;

    public int Overflow => Offset + 1;

    /// <summary>Floats in all (at least one segment's worth, so that views are never empty).</summary>
    public int Length => Overflow + 2 + 1;

    public static GeneralWorkspace Of(ScaleLayout layout) => new(layout.Rows * layout.SegmentsPerRow, layout.GroupCount);
}
