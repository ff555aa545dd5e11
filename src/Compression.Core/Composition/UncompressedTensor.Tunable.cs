// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;

namespace Compression.Composition;

/// <summary><see cref="ITunableTensor"/> on a float32 matrix: θ is the values themselves, row-major; Ŵ(θ) = θ and the
/// vector–Jacobian product is the identity.</summary>
public sealed partial class UncompressedTensor
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
        RequireLength(weight.Length, _values.Length, nameof(weight));
        parameters.CopyTo(weight);
    }

    /// <inheritdoc/>
    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        RequireLength(parameters.Length, _values.Length, nameof(parameters));
        RequireLength(weightGradient.Length, _values.Length, nameof(weightGradient));
        RequireLength(parameterGradient.Length, _values.Length, nameof(parameterGradient));
        TensorPrimitives.Add(parameterGradient, weightGradient, parameterGradient);
    }

    /// <inheritdoc/>
    /// <remarks>Values are stored as float32, so nothing is rounded; NaN and ±∞ are refused.</remarks>
    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters)
    {
        RequireLength(parameters.Length, _values.Length, nameof(parameters));
        for (int i = 0; i < parameters.Length; i++)
        {
            if (!float.IsFinite(parameters[i]))
            {
                ThrowHelper.ThrowArgument(nameof(parameters), $"Value {i} ({i / Columns}, {i % Columns}) is {parameters[i]}; values must be finite.");
            }
        }

        return new UncompressedTensor(Rows, Columns, parameters.ToArray());
    }

    private static void RequireLength(long actual, long expected, string parameterName)
    {
        if (actual != expected)
        {
            ThrowHelper.ThrowArgument(parameterName, $"The span holds {actual} values; {expected} expected.");
        }
    }
}
