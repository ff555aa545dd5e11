// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using Compression.Calibration;
using Compression.Tensors;

namespace Compression.Pruning;

/// <summary>The checks and the rounding rule shared by the pruners, written once so every pruner words them alike.</summary>
internal static class PruningGuards
{
    /// <summary>Returns <paramref name="value"/> when it lies in [0, 1); NaN fails the range test too.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1) or NaN.</exception>
    public static double Sparsity(double value, string paramName) =>
        value is >= 0 and < 1
            ? value
            : throw new ArgumentOutOfRangeException(paramName, value, $"{paramName} must lie in [0, 1) (the fraction of weights pruned); got {value}.");

    /// <summary>
    /// How many of <paramref name="count"/> units a sparsity prunes: <c>round(sparsity·count)</c>, halves to even, which
    /// is Python's <c>round</c> and so what <c>torch.nn.utils.prune</c> computes for a fractional amount.
    /// </summary>
    public static long PrunedCount(double sparsity, long count) =>
        Math.Min(count, (long)Math.Round(sparsity * count, MidpointRounding.ToEven));

    /// <summary>Checks one matrix that does not arrive through <see cref="ICompressor.Compress"/> (lists, gradients).</summary>
    /// <exception cref="ArgumentException">Not rank 2, or NaN/∞ inside.</exception>
    public static void FiniteMatrix(string method, DenseTensor matrix, string paramName, string what)
    {
        ArgumentNullException.ThrowIfNull(matrix, paramName);
        if (matrix.Rank != 2)
        {
            throw new ArgumentException(
                $"{method}: {what} must be a matrix [out, in]; got shape [{string.Join(", ", matrix.Shape.ToArray())}].", paramName);
        }

        if (matrix.Length > 0 && !float.IsFinite(TensorPrimitives.MaxMagnitude(matrix.Span)))
        {
            ReadOnlySpan<float> values = matrix.Span;
            int index = 0;
            while (float.IsFinite(values[index]))
            {
                index++;
            }

            throw new ArgumentException(
                $"{method}: {what} holds {values[index]} at ({index / matrix.Columns}, {index % matrix.Columns}); values must be finite.", paramName);
        }
    }

    /// <summary>
    /// The context's Hessian when it can score the result (used for the objective only): null when there is none or
    /// it has seen no samples (an empty Hessian would report a misleading objective of 0).
    /// </summary>
    /// <exception cref="ArgumentException">The Hessian's width differs from the weight's columns.</exception>
    public static HessianAccumulator? OptionalHessian(string method, DenseTensor weight, CompressionContext context)
    {
        HessianAccumulator? hessian = context.InputHessian;
        if (hessian is null)
        {
            return null;
        }

        if (hessian.Columns != weight.Columns)
        {
            throw new ArgumentException(
                $"{method}: the input Hessian is {hessian.Columns}×{hessian.Columns} but the weight has {weight.Columns} columns.", nameof(context));
        }

        return hessian.SampleCount == 0 ? null : hessian;
    }
}
