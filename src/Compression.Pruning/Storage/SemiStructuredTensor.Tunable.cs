// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning.Storage;

/// <summary>
/// <see cref="ITunableTensor"/> on an N:M matrix: θ is every stored slot's value, [Rows, <see cref="ValuesPerRow"/>]
/// row-major (<see cref="Values"/>); the in-group indices stay fixed.
/// </summary>
/// <remarks>Padding slots (groups that kept fewer than N weights) are stored slots like the others: they are part of
/// θ and of <see cref="SparsityMask"/>, so fitting may give them a value; the layout still holds at most N non-zeros
/// per group. Ŵ(θ) places each slot at its index (+0 elsewhere) as decompression does; the vector–Jacobian product
/// gathers ∂L/∂Ŵ at the slots.</remarks>
public sealed partial class SemiStructuredTensor
{
    /// <inheritdoc/>
    public int TunableParameterCount => _values.Length;

    /// <inheritdoc/>
    public void GetTunableParameters(Span<float> parameters)
    {
        RequireLength(parameters.Length, _values.Length, nameof(parameters));
        _values.CopyTo(parameters);
    }

    /// <inheritdoc/>
    public void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight)
    {
        RequireLength(parameters.Length, _values.Length, nameof(parameters));
        RequireLength(weight.Length, ElementCount, nameof(weight));
        weight.Clear();
        for (int r = 0; r < Rows; r++)
        {
            for (int k = 0; k < ValuesPerRow; k++)
            {
                weight[r * Columns + k / N * M + GetIndex(r, k)] = parameters[r * ValuesPerRow + k];
            }
        }
    }

    /// <inheritdoc/>
    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        RequireLength(parameters.Length, _values.Length, nameof(parameters));
        RequireLength(weightGradient.Length, ElementCount, nameof(weightGradient));
        RequireLength(parameterGradient.Length, _values.Length, nameof(parameterGradient));
        for (int r = 0; r < Rows; r++)
        {
            for (int k = 0; k < ValuesPerRow; k++)
            {
                parameterGradient[r * ValuesPerRow + k] += weightGradient[r * Columns + k / N * M + GetIndex(r, k)];
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>The same N, M, indices and <see cref="SparsityMask"/>; values are stored as float32, so nothing is rounded.</remarks>
    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters)
    {
        RequireLength(parameters.Length, _values.Length, nameof(parameters));
        for (int i = 0; i < parameters.Length; i++)
        {
            if (!float.IsFinite(parameters[i]))
            {
                throw new ArgumentException($"Slot value {i} is {parameters[i]}; values must be finite.", nameof(parameters));
            }
        }

        return new SemiStructuredTensor(Rows, Columns, N, M, parameters.ToArray(), (byte[])_indices.Clone()) { _mask = SparsityMask };
    }

    private static void RequireLength(long actual, long expected, string parameterName)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"The span holds {actual} values; {expected} expected.", parameterName);
        }
    }
}
