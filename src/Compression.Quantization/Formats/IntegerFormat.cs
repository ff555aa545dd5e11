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

    private protected override GroupScales ChooseScales(DenseTensor weight, ScaleLayout layout, GroupStats[] stats, RtnOptions options)
    {
        var scales = new float[stats.Length];
        byte[]? zeros = options.Symmetric ? null : new byte[stats.Length];
        int levels = (1 << Bits) - 1;
        float symmetricMax = options.SymmetricRange == SymmetricRange.Restricted ? Offset - 1 : levels / 2f;
        var shrink = new float[stats.Length];
        System.Threading.Tasks.Parallel.For(0, stats.Length, g =>
        {
            shrink[g] = options.Clipping is null ? 1f : SearchShrink(weight, layout, g, stats[g], options);
            if (options.Symmetric)
            {
                scales[g] = stats[g].AbsMax * shrink[g] / symmetricMax;
            }
            else
            {
                float min = MathF.Min(stats[g].Min, 0) * shrink[g], max = MathF.Max(stats[g].Max, 0) * shrink[g];
                scales[g] = (max - min) / levels;
            }
        });

        RoundScales(scales, options.ScaleStorage);
        if (zeros is not null)
        {
            for (int g = 0; g < stats.Length; g++)
            {
                float min = MathF.Min(stats[g].Min, 0) * shrink[g];
                zeros[g] = scales[g] == 0 ? (byte)0 : (byte)Math.Clamp(MathF.Round(-min / scales[g], MidpointRounding.ToEven), 0, levels);
            }
        }

        return new GroupScales(scales, options.ScaleStorage) { ZeroPoints = zeros };
    }

    private protected override void EncodeSegment(ReadOnlySpan<float> x, GroupScales scales, int group, RtnOptions options, Span<byte> codes)
    {
        float scale = scales.Scales[group];
        if (scales.ZeroPoints is null)
        {
            int low = options.SymmetricRange == SymmetricRange.Restricted ? -(Offset - 1) : -Offset;
            IntegerPrimitives.Quantize(x, scale, Offset, low + Offset, 2 * Offset - 1, codes);
        }
        else
        {
            IntegerPrimitives.Quantize(x, scale, scales.ZeroPoints[group], 0, (1 << Bits) - 1, codes);
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
