// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning;

/// <summary>
/// <see cref="ITunableTensor"/> on a pruned matrix: θ is the kept values in row-major order (<see cref="Values"/>);
/// the <see cref="Mask"/> stays fixed, so pruned weights stay exactly 0.
/// </summary>
/// <remarks>Ŵ(θ) scatters θ to the kept positions (+0 elsewhere), exactly as decompression does; the vector–Jacobian
/// product gathers ∂L/∂Ŵ at the kept positions.</remarks>
public sealed partial class PrunedTensor
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
        byte[] bits = Mask.ToBytes();
        int k = 0;
        for (int i = 0; i < weight.Length; i++)
        {
            if ((bits[i >> 3] & (1 << (i & 7))) != 0)
            {
                weight[i] = parameters[k++];
            }
        }
    }

    /// <inheritdoc/>
    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        RequireLength(parameters.Length, _values.Length, nameof(parameters));
        RequireLength(weightGradient.Length, ElementCount, nameof(weightGradient));
        RequireLength(parameterGradient.Length, _values.Length, nameof(parameterGradient));
        byte[] bits = Mask.ToBytes();
        int k = 0;
        for (int i = 0; i < weightGradient.Length; i++)
        {
            if ((bits[i >> 3] & (1 << (i & 7))) != 0)
            {
                parameterGradient[k++] += weightGradient[i];
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>The result shares this tensor's <see cref="Mask"/> (an immutable object) and <see cref="Report"/>;
    /// values are stored as float32, so nothing is rounded.</remarks>
    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters)
    {
        RequireLength(parameters.Length, _values.Length, nameof(parameters));
        for (int i = 0; i < parameters.Length; i++)
        {
            if (!float.IsFinite(parameters[i]))
            {
                throw new ArgumentException($"Kept value {i} is {parameters[i]}; values must be finite.", nameof(parameters));
            }
        }

        return new PrunedTensor(Mask, parameters.ToArray(), Report);
    }

    private static void RequireLength(long actual, long expected, string parameterName)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"The span holds {actual} values; {expected} expected.", parameterName);
        }
    }
}
