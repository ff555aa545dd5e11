// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using Compression.Quantization.Packing;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>How a ternary scale and threshold are chosen.</summary>
public enum TernaryMethod
{
    /// <summary>BitNet b1.58: γ = mean|w| over the group, q = clamp(round(w / γ), −1, 1), value q·γ.</summary>
    AbsMean,

    /// <summary>TWN (Li et al., "Ternary Weight Networks", 2016): Δ = 0.7·mean|w|, q = sign(w)·[|w| &gt; Δ],
    /// α = mean of |w| over the kept weights (0 if none), value q·α.</summary>
    Threshold,
}

/// <summary>Ternary weights {−1, 0, +1}·scale, packed five to a byte (1.6 bits per weight).</summary>
internal sealed class TernaryFormat(TernaryMethod method) : GroupedFormat
{
    public TernaryMethod Method { get; } = method;

    public override string Name => Method == TernaryMethod.AbsMean ? "ternary-absmean" : "ternary-twn";

    public override double ElementBits => 1.6;

    internal override int CodeBits => 2;

    internal override int PackedRowLength(int columns) => TritPacker.PackedLength(columns);

    internal override void PackRow(ReadOnlySpan<byte> codes, Span<byte> destination) => TritPacker.Pack(codes, destination);

    internal override void UnpackRow(ReadOnlySpan<byte> packed, Span<byte> codes) => TritPacker.Unpack(packed, codes);

    private protected override StatisticsKind Statistics(RtnOptions options) => StatisticsKind.SumAbs;

    private protected override bool ScalesAreLocal(RtnOptions options) => Method == TernaryMethod.AbsMean;

    private protected override SegmentParameters ChooseGroup(in GroupStats stats, float tensorScale, RtnOptions options)
    {
        float mean = stats.Count == 0 ? 0 : (float)(stats.SumAbs / stats.Count);
        return new SegmentParameters(RoundScale(mean, options.ScaleStorage), 0, 1f, 0.7f * mean);
    }

    private protected override GroupScales ChooseScales(DenseTensor weight, ScaleLayout layout, GroupStats[] stats, RtnOptions options, System.Threading.Tasks.ParallelOptions parallel)
    {
        if (Method == TernaryMethod.AbsMean)
        {
            return base.ChooseScales(weight, layout, stats, options, parallel);
        }

        // TWN: α is the mean of the kept magnitudes, a second look at each group's values.
        var scales = new float[stats.Length];
        var thresholds = new float[stats.Length];
        System.Threading.Tasks.Parallel.For(0, stats.Length, parallel, g =>
        {
            thresholds[g] = ChooseGroup(stats[g], 1f, options).Threshold;
            scales[g] = RoundScale(KeptMean(weight, layout, g, thresholds[g]), options.ScaleStorage);
        });

        return new GroupScales(scales, options.ScaleStorage) { Thresholds = thresholds };
    }

    internal override bool SupportsSegmentCodec => true;

    /// <summary>
    /// One row's segment: γ (absmean), or TWN's Δ and α from the same values, so a group coded one at a time (GPTQ)
    /// gets what the whole-matrix driver gives a group holding the same values.
    /// </summary>
    internal override SegmentParameters ChooseSegment(ReadOnlySpan<float> x, float tensorScale, RtnOptions options)
    {
        SegmentParameters parameters = base.ChooseSegment(x, tensorScale, options);
        if (Method == TernaryMethod.AbsMean)
        {
            return parameters;
        }

        double sum = 0;
        long kept = 0;
        foreach (float v in x)
        {
            if (MathF.Abs(v) > parameters.Threshold)
            {
                sum += MathF.Abs(v);
                kept++;
            }
        }

        return parameters with { Scale = RoundScale(kept == 0 ? 0 : (float)(sum / kept), options.ScaleStorage) };
    }

    internal override void DecodeSegment(ReadOnlySpan<byte> codes, in SegmentParameters parameters, RtnOptions options, Span<float> destination)
    {
        float scale = parameters.Scale;
        for (int i = 0; i < codes.Length; i++)
        {
            destination[i] = (codes[i] - 1) * scale;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private protected override void EncodeSegment(ReadOnlySpan<float> x, in SegmentParameters parameters, RtnOptions options, Span<byte> codes)
    {
        float scale = parameters.Scale;
        if (Method == TernaryMethod.AbsMean)
        {
            for (int i = 0; i < x.Length; i++)
            {
                codes[i] = scale == 0 ? (byte)1 : (byte)(Math.Clamp(MathF.Round(x[i] / scale, MidpointRounding.ToEven), -1f, 1f) + 1);
            }

            return;
        }

        float threshold = parameters.Threshold;
        for (int i = 0; i < x.Length; i++)
        {
            codes[i] = MathF.Abs(x[i]) > threshold ? (x[i] > 0 ? (byte)2 : (byte)0) : (byte)1;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private protected override void DecodeSegment(ReadOnlySpan<byte> codes, QuantizedTensor tensor, int group, Span<float> destination)
    {
        float scale = tensor.ScalesArray[group];
        for (int i = 0; i < codes.Length; i++)
        {
            destination[i] = (codes[i] - 1) * scale;
        }
    }

    private static float KeptMean(DenseTensor weight, ScaleLayout layout, int group, float threshold)
    {
        (int firstRow, int rowCount, int segment) = layout.GroupExtent(group);
        (int start, int length) = layout.Segment(segment);
        double sum = 0;
        long kept = 0;
        for (int r = firstRow; r < firstRow + rowCount; r++)
        {
            foreach (float v in weight.Span.Slice(r * layout.Columns + start, length))
            {
                if (MathF.Abs(v) > threshold)
                {
                    sum += MathF.Abs(v);
                    kept++;
                }
            }
        }

        return kept == 0 ? 0 : (float)(sum / kept);
    }
}
