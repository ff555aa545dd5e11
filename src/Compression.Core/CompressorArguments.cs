// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using Compression.Tensors;

namespace Compression;

/// <summary>The checks every <see cref="ICompressor.Compress"/> makes at its boundary, written once.</summary>
public static class CompressorArguments
{
    /// <summary>
    /// Checks that <paramref name="weight"/> is a finite matrix and that <paramref name="context"/> carries the
    /// statistics <paramref name="compressor"/> requires, with matching shapes.
    /// </summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The weight is not rank 2 or holds NaN/Inf; a required statistic is missing
    /// or its column count differs from the weight's.</exception>
    /// <exception cref="OperationCanceledException">The context's token is cancelled.</exception>
    public static void Validate(ICompressor compressor, DenseTensor weight, CompressionContext context)
    {
        ArgumentNullException.ThrowIfNull(compressor);
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(context);
        context.CancellationToken.ThrowIfCancellationRequested();
        if (weight.Rank != 2)
        {
            throw new ArgumentException($"{compressor.Name}: the weight must be a matrix [out, in]; got shape [{string.Join(", ", weight.Shape.ToArray())}].",
                nameof(weight));
        }

        // MaxMagnitude is NaN when any element is NaN and infinite when any is infinite: one SIMD pass for both.
        if (weight.Length > 0 && !float.IsFinite(TensorPrimitives.MaxMagnitude(weight.Span)))
        {
            int index = IndexOfNonFinite(weight.Span);
            throw new ArgumentException(
                $"{Who(compressor, context)}: the weight holds {weight.Span[index]} at ({index / weight.Columns}, {index % weight.Columns}); weights must be finite.",
                nameof(weight));
        }

        if ((compressor.Requirements & CalibrationRequirements.InputHessian) != 0)
        {
            if (context.InputHessian is null)
            {
                throw new ArgumentException($"{compressor.Name} needs the layer's input Hessian: set CompressionContext.InputHessian.", nameof(context));
            }

            if (context.InputHessian.Columns != weight.Columns)
            {
                throw new ArgumentException(
                    $"{compressor.Name}: the input Hessian is {context.InputHessian.Columns}×{context.InputHessian.Columns} but the weight has {weight.Columns} columns.",
                    nameof(context));
            }

            if (context.InputHessian.SampleCount == 0)
            {
                throw new ArgumentException($"{compressor.Name}: the input Hessian has seen no samples.", nameof(context));
            }
        }
    }

    // The compressor's name, with the layer's when the caller set one: a model-level run must say which layer was bad.
    private static string Who(ICompressor compressor, CompressionContext context) =>
        context.LayerName is { Length: > 0 } layer ? $"{compressor.Name} ({layer})" : compressor.Name;

    private static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                return i;
            }
        }

        return 0;
    }
}
