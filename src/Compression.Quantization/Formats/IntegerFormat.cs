// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization.Primitives;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// b-bit integers (2 ≤ b ≤ 8) with a float scale per group. Symmetric: q = clamp(round(x / s)) on the
/// <see cref="SymmetricRange"/> grid, stored as the unsigned code q + 2^(b−1). Asymmetric: the range [min(w, 0),
/// max(w, 0)] on 0..2^b − 1, s = (max − min)/(2^b − 1), zero point z = clamp(round(−min / s)), code = clamp(round(x / s)
/// + z). Rounding is half to even; x / s is an IEEE division (the same in every path).
/// </summary>
internal sealed class IntegerFormat : GroupedFormat
{
    public IntegerFormat(int bits)
    {
        if (bits is < 2 or > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Integer formats have 2 to 8 bits.");
        }

        Bits = bits;
    }

    public int Bits { get; }

    public override string Name => $"int{Bits}";

    internal override int CodeBits => Bits;

    private int Offset => 1 << (Bits - 1);

    internal override void ValidateOptions(RtnOptions options)
    {
    }

    private protected override StatisticsKind Statistics(RtnOptions options) => options.Symmetric ? StatisticsKind.AbsMax : StatisticsKind.MinMax;

    private protected override bool ScalesAreLocal(RtnOptions options) => options.Clipping is null;

    private protected override SegmentParameters ChooseGroup(in GroupStats stats, float tensorScale, RtnOptions options) =>
        ChooseShrunk(stats, 1f, options);

    private protected override GroupScales ChooseScales(DenseTensor weight, ScaleLayout layout, GroupStats[] stats, RtnOptions options, System.Threading.Tasks.ParallelOptions parallel)
    {
        if (options.Clipping is null)
        {
            return base.ChooseScales(weight, layout, stats, options, parallel);
        }

        var scales = new float[stats.Length];
        byte[]? zeros = options.Symmetric ? null : new byte[stats.Length];
        // The grid search is most of the run: the token (in parallel) is checked before each group.
        System.Threading.Tasks.Parallel.For(0, stats.Length, parallel, g =>
        {
            SegmentParameters p = ChooseShrunk(stats[g], SearchShrink(weight, layout, g, stats[g], options), options);
            scales[g] = p.Scale;
            if (zeros is not null)
            {
                zeros[g] = p.Zero;
            }
        });

        return new GroupScales(scales, options.ScaleStorage) { ZeroPoints = zeros };
    }

    internal override bool SupportsSegmentCodec => true;

    internal override SegmentParameters ChooseSegment(ReadOnlySpan<float> x, float tensorScale, RtnOptions options)
    {
        GroupStats stats = GroupStats.Of(x, Statistics(options));
        if (options.Clipping is null)
        {
            return ChooseShrunk(stats, 1f, options);
        }

        // The range search reads the group's values through a layout: view them as a one-row matrix of one group.
        var single = new DenseTensor(x.ToArray(), 1, x.Length);
        var layout = new ScaleLayout(Granularity.PerChannel, 1, x.Length);
        return ChooseShrunk(stats, SearchShrink(single, layout, 0, stats, options), options);
    }

    internal override void DecodeSegment(ReadOnlySpan<byte> codes, in SegmentParameters parameters, RtnOptions options, Span<float> destination) =>
        IntegerPrimitives.Dequantize(codes, parameters.Scale, options.Symmetric ? Offset : parameters.Zero, destination);

    private SegmentParameters ChooseShrunk(in GroupStats stats, float shrink, RtnOptions options)
    {
        int levels = (1 << Bits) - 1;
        if (options.Symmetric)
        {
            float symmetricMax = options.SymmetricRange == SymmetricRange.Restricted ? Offset - 1 : levels / 2f;
            return new SegmentParameters(RoundScale(stats.AbsMax * shrink / symmetricMax, options.ScaleStorage), 0, 1f, 0);
        }

        float min = MathF.Min(stats.Min, 0) * shrink, max = MathF.Max(stats.Max, 0) * shrink;
        float scale = RoundScale((max - min) / levels, options.ScaleStorage);
        byte zero = scale == 0 ? (byte)0 : (byte)Math.Clamp(MathF.Round(-min / scale, MidpointRounding.ToEven), 0, levels);
        return new SegmentParameters(scale, zero, 1f, 0);
    }

    private protected override void EncodeSegment(ReadOnlySpan<float> x, in SegmentParameters parameters, RtnOptions options, Span<byte> codes)
    {
        if (options.Symmetric)
        {
            int low = options.SymmetricRange == SymmetricRange.Restricted ? -(Offset - 1) : -Offset;
            IntegerPrimitives.Quantize(x, parameters.Scale, Offset, low + Offset, 2 * Offset - 1, codes);
        }
        else
        {
            IntegerPrimitives.Quantize(x, parameters.Scale, parameters.Zero, 0, (1 << Bits) - 1, codes);
        }
    }

    private protected override void DecodeSegment(ReadOnlySpan<byte> codes, QuantizedTensor tensor, int group, Span<float> destination)
    {
        int zero = tensor.ZeroPointsArray is null ? Offset : tensor.ZeroPointsArray[group];
        IntegerPrimitives.Dequantize(codes, tensor.ScalesArray[group], zero, destination);
    }

    /// <summary>The reference GPTQ code's grid search: the shrink p of the range with the least Σ|x − dq|^norm.</summary>
    private float SearchShrink(DenseTensor weight, ScaleLayout layout, int group, GroupStats stats, RtnOptions options)
    {
        ClippingSearch search = options.Clipping!;
        int levels = (1 << Bits) - 1;
        float symmetricMax = options.SymmetricRange == SymmetricRange.Restricted ? Offset - 1 : levels / 2f;
        int low = options.SymmetricRange == SymmetricRange.Restricted ? 1 : 0;
        double bestError = double.PositiveInfinity;
        float best = 1f;
        int steps = (int)(search.MaxShrink * search.Grid);
        for (int i = 0; i <= steps; i++)
        {
            float p = 1f - (float)i / search.Grid;
            float scale, zero;
            int lo, hi;
            if (options.Symmetric)
            {
                scale = stats.AbsMax * p / symmetricMax;
                zero = Offset;
                (lo, hi) = (low, levels);
            }
            else
            {
                float min = MathF.Min(stats.Min, 0) * p, max = MathF.Max(stats.Max, 0) * p;
                scale = (max - min) / levels;
                zero = scale == 0 ? 0 : Math.Clamp(MathF.Round(-min / scale, MidpointRounding.ToEven), 0, levels);
                (lo, hi) = (0, levels);
            }

            if (scale == 0)
            {
                return 1f;
            }

            double error = 0;
            (int firstRow, int rowCount, int segmentIndex) = layout.GroupExtent(group);
            (int start, int length) = layout.Segment(segmentIndex);
            for (int row = firstRow; row < firstRow + rowCount; row++)
            {
                ReadOnlySpan<float> x = weight.Span.Slice(row * layout.Columns + start, length);
                foreach (float v in x)
                {
                    float q = Math.Clamp(MathF.Round(v / scale, MidpointRounding.ToEven) + zero, lo, hi);
                    error += Math.Pow(Math.Abs((q - zero) * scale - v), search.Norm);
                }
            }

            if (error < bestError)
            {
                bestError = error;
                best = p;
            }
        }

        return best;
    }
}
