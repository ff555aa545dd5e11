// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>
/// Device code of NF4's double quantization (<c>Nf4Format.ChooseScales</c>): the mean of all block absmax values,
/// then per 256 constants an int8 code of (absmax − mean) with a float32 scale, and the decoded constant every element
/// is encoded against.
/// </summary>
internal static class Nf4Kernels
{
    /// <summary>
    /// One thread: the mean of the block absmax values as a float64 sum in block order, the CPU's order. A single
    /// thread is the price of that order; it reads 4 bytes per 64 weights, so it is small next to the element pass.
    /// </summary>
    public static void Offset(Index1D index, ArrayView<float> absMax, ArrayView<float> offset, int count)
    {
        double sum = 0;
        for (int g = 0; g < count; g++)
        {
            sum += absMax[g];
        }

        offset[0] = count == 0 ? 0 : (float)(sum / count);
    }

    /// <summary>
    /// Per block of <see cref="DoubleQuantization.BlockSize"/> constants: its int8 codes (into <paramref name="codes"/>),
    /// its scale, and each constant replaced by its decoded value max(code·scale + offset, 0).
    /// </summary>
    public static void DoubleQuantize(Index1D block, ArrayView<float> scales, ArrayView<byte> codes, ArrayView<float> secondScales,
        ArrayView<float> offsetView, int count)
    {
        float offset = offsetView[0];
        int start = block * DoubleQuantization.BlockSize;
        int end = Math.Min(start + DoubleQuantization.BlockSize, count);
        float max = 0;
        for (int g = start; g < end; g++)
        {
            max = MathF.Max(max, MathF.Abs(scales[g] - offset));
        }

        float scale = max / 127f;
        secondScales[block] = scale;
        for (int g = start; g < end; g++)
        {
            int code = scale == 0 ? 0 : (int)QuadKernels.RoundHalfEven(MathF.Min(MathF.Max((scales[g] - offset) / scale, -127f), 127f));
            codes[g] = (byte)(code & 0xFF);
            scales[g] = MathF.Max(GeneralKernels.Mul(code, scale) + offset, 0f);
        }
    }
}
