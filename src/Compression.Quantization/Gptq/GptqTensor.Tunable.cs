// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization.Rotation;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// <see cref="ITunableTensor"/> on a GPTQ result: θ is <see cref="Quantized"/>'s θ (its group scales, in stored
/// column order's group order); codes, <see cref="Permutation"/>, <see cref="Rotation"/> and the sparsity mask stay fixed.
/// </summary>
/// <remarks>
/// <para>Ŵ(θ) = P(Q(θ)) without a rotation, where Q(θ) is the quantized tensor's reconstruction in stored column order
/// and P moves stored column k to original column <see cref="Permutation"/>[k]; with a rotation, Ŵ(θ) = P(Q(θ))·R,
/// which <see cref="CompressedTensor.Decompress"/> computes the same way. Both are linear in θ: the vector–Jacobian
/// product applies the adjoints in reverse order (Rᵀ is the forward rotation, Pᵀ gathers columns back into stored
/// order) before the quantized tensor's own.</para>
/// <para>Weights a prior pruning stage removed have codes that decode to exactly 0 at any scale (value 0, or code =
/// zero point), so they stay 0 for every θ and receive no gradient.</para>
/// </remarks>
public sealed partial class GptqTensor
{
    /// <inheritdoc/>
    public int TunableParameterCount => Quantized.TunableParameterCount;

    /// <inheritdoc/>
    public void GetTunableParameters(Span<float> parameters) => Quantized.GetTunableParameters(parameters);

    /// <inheritdoc/>
    public void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight)
    {
        CheckLength(weight.Length, (long)Rows * Columns, nameof(weight));
        float[] stored = new float[Rows * Columns];
        Quantized.Reconstruct(parameters, stored);
        if (Rotation is null)
        {
            ToOriginalOrder(stored, weight);
            return;
        }

        var rotated = new DenseTensor(Rows, Columns);
        ToOriginalOrder(stored, rotated.Span);
        new HadamardRotation(Rotation).UnrotateWeight(rotated).Span.CopyTo(weight);
    }

    /// <inheritdoc/>
    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        CheckLength(weightGradient.Length, (long)Rows * Columns, nameof(weightGradient));
        ReadOnlySpan<float> gradient = weightGradient;
        if (Rotation is not null)
        {
            // Ŵ = X·R row by row, so ∂L/∂X = G·Rᵀ: the forward rotation.
            var g = new DenseTensor(Rows, Columns);
            weightGradient.CopyTo(g.Span);
            gradient = new HadamardRotation(Rotation).RotateWeight(g).Span;
        }

        float[] stored = new float[Rows * Columns];
        ToStoredOrder(gradient, stored);
        Quantized.BackpropagateReconstruction(parameters, stored, parameterGradient);
    }

    /// <inheritdoc/>
    /// <remarks>A <see cref="GptqTensor"/> with the quantized tensor's <see cref="QuantizedTensor.WithTunableParameters"/>
    /// and the same permutation, report, rotation and mask.</remarks>
    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters)
    {
        var quantized = (QuantizedTensor)Quantized.WithTunableParameters(parameters);
        return ReferenceEquals(quantized, Quantized) ? this : new GptqTensor(quantized, _permutation, Report, Rotation, _mask);
    }

    /// <summary>Per element of the decompressed matrix (row-major, original column order), the factor its group's
    /// scale multiplies: <see cref="QuantizedTensor.UnscaledValues"/> moved to the original columns.</summary>
    /// <exception cref="InvalidOperationException">The tensor is rotated, so an element is not a multiple of one scale.</exception>
    public float[] UnscaledValues()
    {
        ThrowIfRotated();
        float[] result = new float[Rows * Columns];
        ToOriginalOrder(Quantized.UnscaledValues(), result);
        return result;
    }

    /// <summary>Per element of the decompressed matrix (row-major, original column order), the index into
    /// <see cref="QuantizedTensor.Scales"/> of <see cref="Quantized"/> of its group.</summary>
    /// <exception cref="InvalidOperationException">The tensor is rotated, so an element is not a multiple of one scale.</exception>
    public int[] ScaleIndex()
    {
        ThrowIfRotated();
        int[] stored = Quantized.ScaleIndex();
        int[] result = new int[stored.Length];
        for (int r = 0; r < Rows; r++)
        {
            for (int k = 0; k < Columns; k++)
            {
                result[r * Columns + _permutation[k]] = stored[r * Columns + k];
            }
        }

        return result;
    }

    /// <summary>The same codes, permutation, report and mask with new group scales, rounded and validated as
    /// <see cref="QuantizedTensor.WithScales"/> does.</summary>
    /// <param name="scales">One scale per group of <see cref="Quantized"/>, in its <see cref="QuantizedTensor.Scales"/> order.</param>
    /// <exception cref="ArgumentException">See <see cref="QuantizedTensor.WithScales"/>.</exception>
    /// <exception cref="InvalidOperationException">The tensor is rotated, or its scales are not continuous.</exception>
    public GptqTensor WithScales(ReadOnlySpan<float> scales)
    {
        ThrowIfRotated();
        return new GptqTensor(Quantized.WithScales(scales), _permutation, Report, sparsityMask: _mask);
    }

    private void ThrowIfRotated()
    {
        if (Rotation is not null)
        {
            throw new InvalidOperationException(
                $"The tensor's codes live in a Hadamard-rotated basis (block {Rotation.BlockSize}); a decompressed weight mixes the scales of a block. Use the ITunableTensor members.");
        }
    }

    /// <summary>Stored column k → original column <see cref="Permutation"/>[k], row by row.</summary>
    private void ToOriginalOrder(ReadOnlySpan<float> stored, Span<float> original)
    {
        if (IsIdentityOrder)
        {
            stored.CopyTo(original);
            return;
        }

        for (int r = 0; r < Rows; r++)
        {
            ReadOnlySpan<float> from = stored.Slice(r * Columns, Columns);
            Span<float> to = original.Slice(r * Columns, Columns);
            for (int k = 0; k < Columns; k++)
            {
                to[_permutation[k]] = from[k];
            }
        }
    }

    /// <summary>The adjoint of <see cref="ToOriginalOrder"/>: original column <see cref="Permutation"/>[k] → stored column k.</summary>
    private void ToStoredOrder(ReadOnlySpan<float> original, Span<float> stored)
    {
        if (IsIdentityOrder)
        {
            original.CopyTo(stored);
            return;
        }

        for (int r = 0; r < Rows; r++)
        {
            ReadOnlySpan<float> from = original.Slice(r * Columns, Columns);
            Span<float> to = stored.Slice(r * Columns, Columns);
            for (int k = 0; k < Columns; k++)
            {
                to[k] = from[_permutation[k]];
            }
        }
    }

    private static void CheckLength(long actual, long expected, string parameterName)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"The span holds {actual} values; {expected} expected.", parameterName);
        }
    }
}
