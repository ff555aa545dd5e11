// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Numerics;

namespace Compression.LowRank;

/// <summary>
/// <see cref="ITunableTensor"/> on a factorised matrix: θ = [A row-major ([rows, rank]), then B row-major ([rank,
/// columns])], (rows + columns)·rank values; the rank stays fixed.
/// </summary>
/// <remarks>
/// Ŵ(θ) = A·B through the same <see cref="Gemm"/> call as decompression, so the stored θ reconstructs bit for bit.
/// The vector–Jacobian product of G = ∂L/∂Ŵ is ∂L/∂A = G·Bᵀ and ∂L/∂B = Aᵀ·G, two more products accumulated in float32
/// (error about k·ε·Σ|g||b| with k the columns or rows summed over, as <see cref="Gemm"/> documents).
/// </remarks>
public sealed partial class LowRankTensor
{
    /// <inheritdoc/>
    public int TunableParameterCount => _left.Length + _right.Length;

    /// <inheritdoc/>
    public void GetTunableParameters(Span<float> parameters)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        _left.CopyTo(parameters);
        _right.CopyTo(parameters[_left.Length..]);
    }

    /// <inheritdoc/>
    public void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        RequireLength(weight.Length, (long)Rows * Columns, nameof(weight));
        Gemm.Multiply(parameters[.._left.Length], parameters[_left.Length..], weight, Rows, Columns, Rank);
    }

    /// <inheritdoc/>
    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        RequireLength(weightGradient.Length, (long)Rows * Columns, nameof(weightGradient));
        RequireLength(parameterGradient.Length, TunableParameterCount, nameof(parameterGradient));
        ReadOnlySpan<float> a = parameters[.._left.Length], b = parameters[_left.Length..];
        // ∂L/∂A += G·Bᵀ ([rows, columns]·[columns, rank]); ∂L/∂B += Aᵀ·G ([rank, rows]·[rows, columns]).
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.Transpose, Rows, Rank, Columns,
            1f, weightGradient, Columns, b, Columns, 1f, parameterGradient[.._left.Length], Rank);
        Gemm.Multiply(MatrixTranspose.Transpose, MatrixTranspose.None, Rank, Columns, Rows,
            1f, a, Rank, weightGradient, Columns, 1f, parameterGradient[_left.Length..], Columns);
    }

    /// <inheritdoc/>
    /// <remarks>The factors are rounded to <see cref="Precision"/> (Float16 and BFloat16 to nearest, ties to even); the
    /// result keeps the rank, the precision and the <see cref="Report"/>.</remarks>
    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        float[] left = Round(parameters[.._left.Length], Precision);
        float[] right = Round(parameters[_left.Length..], Precision);
        for (int i = 0; i < parameters.Length; i++)
        {
            float stored = i < left.Length ? left[i] : right[i - left.Length];
            if (!float.IsFinite(stored))
            {
                throw new ArgumentException(
                    $"Parameter {i} ({(i < left.Length ? "A" : "B")}) is {parameters[i]}, which is {stored} in {Precision}; factors must be finite.",
                    nameof(parameters));
            }
        }

        return new LowRankTensor(Rows, Columns, Rank, left, right, Precision, Report);
    }

    private static void RequireLength(long actual, long expected, string parameterName)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"The span holds {actual} values; {expected} expected.", parameterName);
        }
    }
}
