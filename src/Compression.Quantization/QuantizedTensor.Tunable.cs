// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading.Tasks;
using Compression.Quantization.Formats;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// <see cref="ITunableTensor"/> on a quantized matrix: θ is the group scales, in <see cref="Scales"/> order; codes and
/// zero points stay fixed.
/// </summary>
/// <remarks>
/// <para>Every format decodes an element as one float32 product, Ŵ = u·s, of a value u read from the code alone
/// (value(code) for float and ternary formats, code − zero point for integer ones, both exact in float32) and the
/// group's scale s. So Ŵ(θ)[i] = u[i]·θ[group(i)], linear in θ, and ∂L/∂θ[g] = Σ_{i in g} u[i]·∂L/∂Ŵ[i].</para>
/// <para>NVFP4 decodes as value(code)·(s_b·g) with the float32 tensor scale g: θ is the E4M3 block scale s_b
/// <em>without</em> g (so θ is what <see cref="Scales"/> holds and rounds to an E4M3 code), and
/// <see cref="Reconstruct"/> computes value(code)·(θ·g) in that order, bit for bit what decoding does.
/// <see cref="UnscaledValues"/> is then value(code)·g rounded to float32, and UnscaledValues[i]·Scales[group] may
/// differ from the decoded weight by the two roundings of the two orders: at most 2⁻²² of its magnitude (4 units of
/// float32 roundoff) for normal results.</para>
/// <para>Tunable encodings: Float32, Float16, BFloat16 and Fp8E4M3 (NVFP4). MX formats' E8M0 scales are powers of two
/// and NF4's double-quantized scales are int8 codes of a shared grid: neither is a continuous parameter, so those
/// tensors report <see cref="TunableParameterCount"/> = 0 (their reconstruction is fixed).</para>
/// </remarks>
public sealed partial class QuantizedTensor
{
    /// <summary>Whether the scale encoding stores a continuous value (see the remarks on tunable encodings).</summary>
    private bool ScalesAreTunable =>
        ScaleEncoding is ScaleEncoding.Float32 or ScaleEncoding.Float16 or ScaleEncoding.BFloat16 or ScaleEncoding.Fp8E4M3;

    /// <inheritdoc/>
    /// <remarks>The number of scale groups for Float32, Float16, BFloat16 and FP8 E4M3 scales; 0 for E8M0 (MX) and
    /// double-quantized (NF4) scales, which are not continuous.</remarks>
    public int TunableParameterCount => ScalesAreTunable ? ScalesArray.Length : 0;

    /// <inheritdoc/>
    public void GetTunableParameters(Span<float> parameters)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        if (TunableParameterCount > 0)
        {
            ScalesArray.CopyTo(parameters);
        }
    }

    /// <inheritdoc/>
    public void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        RequireLength(weight.Length, (long)Rows * Columns, nameof(weight));
        if (TunableParameterCount == 0)
        {
            DecompressTo(weight);
            return;
        }

        // value(code) with GlobalScale 1, then value·(θ·g): the same two products, in the same order, as the formats'
        // decoders (for every format but NVFP4 g is 1 and θ·1 is θ exactly).
        float[] values = DecodeWithUnitScales(globalScale: 1f);
        ScaleLayout layout = Layout;
        float global = GlobalScale;
        int columns = Columns;
        for (int r = 0; r < Rows; r++)
        {
            for (int s = 0; s < layout.SegmentsPerRow; s++)
            {
                float scale = parameters[layout.GroupOf(r, s)] * global;
                (int start, int length) = layout.Segment(s);
                int offset = r * columns + start;
                for (int i = offset; i < offset + length; i++)
                {
                    weight[i] = values[i] * scale;
                }
            }
        }
    }

    /// <inheritdoc/>
    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        RequireLength(weightGradient.Length, (long)Rows * Columns, nameof(weightGradient));
        RequireLength(parameterGradient.Length, TunableParameterCount, nameof(parameterGradient));
        if (TunableParameterCount == 0)
        {
            return;
        }

        // ∂Ŵ[i]/∂θ[g] = value(code)·g, taken in float64 so the gradient carries no rounding of the product; each
        // group's sum is accumulated in float64 (groups can be whole rows or the whole matrix) and added once.
        float[] values = DecodeWithUnitScales(globalScale: 1f);
        float[] gradient = weightGradient.ToArray();
        double global = GlobalScale;
        ScaleLayout layout = Layout;
        int columns = Columns;
        double[] sums = new double[layout.GroupCount];
        Parallel.For(0, layout.GroupRows, groupRow =>
        {
            (int firstRow, int rowCount, _) = layout.GroupExtent(groupRow * layout.SegmentsPerRow);
            for (int r = firstRow; r < firstRow + rowCount; r++)
            {
                for (int s = 0; s < layout.SegmentsPerRow; s++)
                {
                    (int start, int length) = layout.Segment(s);
                    double sum = 0;
                    for (int i = r * columns + start, end = i + length; i < end; i++)
                    {
                        sum += (double)values[i] * gradient[i];
                    }

                    sums[layout.GroupOf(r, s)] += sum * global;
                }
            }
        });

        for (int g = 0; g < sums.Length; g++)
        {
            parameterGradient[g] += (float)sums[g];
        }
    }

    /// <inheritdoc/>
    /// <remarks>Scales are rounded and validated as <see cref="WithScales"/> does. For E8M0 and double-quantized
    /// scales (no parameters) the span must be empty and the result is this tensor, which is immutable.</remarks>
    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        return TunableParameterCount == 0 ? this : WithScalesCore(parameters, nameof(parameters));
    }

    /// <summary>
    /// Per element (row-major, <see cref="CompressedTensor.Rows"/> × <see cref="CompressedTensor.Columns"/>), the factor
    /// its group's scale multiplies: value(code) for float and ternary formats, code − zero point for integer formats,
    /// value(code)·<see cref="GlobalScale"/> (rounded to float32) for NVFP4.
    /// </summary>
    /// <remarks>The decoded weight is UnscaledValues()[i]·Scales[ScaleIndex()[i]] bit for bit for every format but
    /// NVFP4, where the two products are taken in the other order (see the type's remarks for the bound).</remarks>
    public float[] UnscaledValues() => DecodeWithUnitScales(GlobalScale);

    /// <summary>Per element (row-major), the index into <see cref="Scales"/> of its group.</summary>
    public int[] ScaleIndex()
    {
        ScaleLayout layout = Layout;
        var index = new int[Rows * Columns];
        for (int r = 0; r < Rows; r++)
        {
            for (int s = 0; s < layout.SegmentsPerRow; s++)
            {
                (int start, int length) = layout.Segment(s);
                index.AsSpan(r * Columns + start, length).Fill(layout.GroupOf(r, s));
            }
        }

        return index;
    }

    /// <summary>
    /// The same codes, zero points, format, granularity and tensor scale with new group scales, each rounded to
    /// <see cref="ScaleEncoding"/>: Float16 and BFloat16 to nearest (ties to even), FP8 E4M3 (NVFP4) to the nearest
    /// E4M3 value, saturating at 448 as the NVFP4 quantizer does.
    /// </summary>
    /// <param name="scales">One scale per group, in <see cref="Scales"/> order.</param>
    /// <exception cref="ArgumentException">The length is not the group count; a scale is NaN, infinite or negative;
    /// a scale is 0 where the stored one is not (only an all-zero group keeps a zero scale); or a positive scale
    /// overflows or underflows the storage type.</exception>
    /// <exception cref="InvalidOperationException">The scales are E8M0 or double-quantized (not continuous).</exception>
    public QuantizedTensor WithScales(ReadOnlySpan<float> scales) => WithScalesCore(scales, nameof(scales));

    private QuantizedTensor WithScalesCore(ReadOnlySpan<float> scales, string parameterName)
    {
        if (!ScalesAreTunable)
        {
            throw new InvalidOperationException(
                $"{Format.Name} stores its scales as {ScaleEncoding}, which are not continuous; they cannot be replaced.");
        }

        RequireLength(scales.Length, ScalesArray.Length, parameterName);
        var rounded = new float[scales.Length];
        for (int g = 0; g < scales.Length; g++)
        {
            float scale = scales[g];
            if (!float.IsFinite(scale) || scale < 0 || (scale == 0 && ScalesArray[g] != 0))
            {
                throw new ArgumentException(
                    $"Scale {g} is {scale}; scales must be finite and positive (0 only for a group whose stored scale is 0).", parameterName);
            }

            rounded[g] = RoundToEncoding(scale);
            if (!float.IsFinite(rounded[g]) || (scale > 0 && rounded[g] == 0))
            {
                throw new ArgumentException($"Scale {g} ({scale}) cannot be stored as a positive {ScaleEncoding} value (it rounds to {rounded[g]}).",
                    parameterName);
            }
        }

        return new QuantizedTensor(Format, Granularity, Rows, Columns, (byte[])PackedCodesArray.Clone(), RowStride, rounded, ScaleEncoding,
            (byte[]?)ZeroPointsArray?.Clone(), GlobalScale, DoubleQuantization);
    }

    private float RoundToEncoding(float scale) => ScaleEncoding switch
    {
        ScaleEncoding.Float16 => (float)(Half)scale,
        ScaleEncoding.BFloat16 => (float)(BFloat16)scale,
        ScaleEncoding.Fp8E4M3 => MiniFloatCodec.Fp8E4M3.RoundToGrid(scale),
        _ => scale,
    };

    /// <summary>The format's own decoder run with every scale 1 and the given tensor scale: value(code), code − zero
    /// point, or value(code)·g — each exact but the last.</summary>
    private float[] DecodeWithUnitScales(float globalScale)
    {
        float[] ones = new float[ScalesArray.Length];
        Array.Fill(ones, 1f);
        var unit = new QuantizedTensor(Format, Granularity, Rows, Columns, PackedCodesArray, RowStride, ones, ScaleEncoding,
            ZeroPointsArray, globalScale, DoubleQuantization);
        float[] values = new float[Rows * Columns];
        Format.Dequantize(unit, values);
        return values;
    }

    private static void RequireLength(long actual, long expected, string parameterName)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"The span holds {actual} values; {expected} expected.", parameterName);
        }
    }
}
