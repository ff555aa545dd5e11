// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// NF4 (Dettmers et al., "QLoRA", 2023): each block of 64 consecutive weights of a row is divided by its absmax and
/// every element takes the nearest of 16 normal-distribution quantiles (<see cref="Values"/>); ties go to the lower
/// code. Double quantization: the block absmax constants, minus their mean, are stored as int8 with one float32 scale
/// per 256 constants (QLoRA stores them as 8-bit floats in bitsandbytes' dynamic map; ours is linear int8, see
/// docs/formats.md). Elements are encoded against the double-quantized constant, exactly what decoding uses.
/// </summary>
internal sealed class Nf4Format : GroupedFormat
{
    public const int BlockSize = 64;

    /// <summary>The 16 NF4 values of the QLoRA paper (Appendix E) and bitsandbytes, ascending.</summary>
    public static ReadOnlySpan<float> Values =>
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
        -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
        0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    public override string Name => "nf4";

    internal override int CodeBits => 4;

    public override Granularity DefaultGranularity { get; } = Granularity.PerGroup(BlockSize);

    internal override bool HasFixedGranularity => true;

    private static readonly float[] s_midpoints = BuildMidpoints();

    private static ReadOnlySpan<float> Midpoints => s_midpoints;

    /// <summary>The code of the NF4 value nearest to <paramref name="normalized"/> (ties to the lower code).</summary>
    public static byte Encode(float normalized)
    {
        // Midpoints computed in float once: 15 comparisons; a value exactly at a midpoint stays below it.
        int code = 0;
        foreach (float midpoint in Midpoints)
        {
            code += normalized > midpoint ? 1 : 0;
        }

        return (byte)code;
    }

    private static float[] BuildMidpoints()
    {
        ReadOnlySpan<float> values = Values;
        var midpoints = new float[values.Length - 1];
        for (int i = 1; i < values.Length; i++)
        {
            midpoints[i - 1] = (values[i - 1] + values[i]) * 0.5f;
        }

        return midpoints;
    }

    private protected override bool ScalesAreLocal(RtnOptions options) => false;

    private protected override ScaleEncoding Encoding(RtnOptions options) => ScaleEncoding.DoubleQuantizedInt8;

    private protected override SegmentParameters ChooseGroup(in GroupStats stats, float tensorScale, RtnOptions options) =>
        throw new InvalidOperationException("NF4 chooses its scales together (double quantization).");

    private protected override GroupScales ChooseScales(DenseTensor weight, ScaleLayout layout, GroupStats[] stats, RtnOptions options, System.Threading.Tasks.ParallelOptions parallel)
    {
        int count = stats.Length;
        var absmax = new float[count];
        double sum = 0;
        for (int g = 0; g < count; g++)
        {
            absmax[g] = stats[g].AbsMax;
            sum += absmax[g];
        }

        float offset = count == 0 ? 0 : (float)(sum / count);
        int blocks = (count + DoubleQuantization.BlockSize - 1) / DoubleQuantization.BlockSize;
        var codes = new sbyte[count];
        var secondScales = new float[blocks];
        for (int b = 0; b < blocks; b++)
        {
            int start = b * DoubleQuantization.BlockSize, end = Math.Min(start + DoubleQuantization.BlockSize, count);
            float max = 0;
            for (int g = start; g < end; g++)
            {
                max = MathF.Max(max, MathF.Abs(absmax[g] - offset));
            }

            float scale = max / 127f;
            secondScales[b] = scale;
            for (int g = start; g < end; g++)
            {
                codes[g] = scale == 0 ? (sbyte)0 : (sbyte)Math.Clamp(MathF.Round((absmax[g] - offset) / scale, MidpointRounding.ToEven), -127f, 127f);
            }
        }

        var doubleQuantization = new DoubleQuantization(codes, secondScales, offset);
        return new GroupScales(doubleQuantization.Decode(), ScaleEncoding.DoubleQuantizedInt8) { DoubleQuantization = doubleQuantization };
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private protected override void EncodeSegment(ReadOnlySpan<float> x, in SegmentParameters parameters, RtnOptions options, Span<byte> codes)
    {
        float scale = parameters.Scale;
        if (scale == 0)
        {
            codes[..x.Length].Fill(7);
            return;
        }

        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // The code is the number of midpoints below the value: 15 compares, each adding 1 (−1 as a mask).
            ReadOnlySpan<float> midpoints = Midpoints;
            var s = Vector256.Create(scale);
            for (; i <= x.Length - 8; i += 8)
            {
                var y = Vector256.Create(x.Slice(i, 8)) / s;
                var count = Vector256<int>.Zero;
                for (int m = 0; m < midpoints.Length; m++)
                {
                    count -= Vector256.GreaterThan(y, Vector256.Create(midpoints[m])).AsInt32();
                }

                for (int k = 0; k < 8; k++)
                {
                    codes[i + k] = (byte)count.GetElement(k);
                }
            }
        }

        for (; i < x.Length; i++)
        {
            codes[i] = Encode(x[i] / scale);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private protected override void DecodeSegment(ReadOnlySpan<byte> codes, QuantizedTensor tensor, int group, Span<float> destination)
    {
        float scale = tensor.ScalesArray[group];
        ReadOnlySpan<float> values = Values;
        for (int i = 0; i < codes.Length; i++)
        {
            destination[i] = values[codes[i] & 0xF] * scale;
        }
    }
}
