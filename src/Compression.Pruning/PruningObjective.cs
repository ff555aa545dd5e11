// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using System.Threading;
using Compression.Calibration;
using Compression.Numerics;
using Compression.Tensors;

namespace Compression.Pruning;

/// <summary>
/// The layer-output error of a pruned weight, <c>‖(W − Ŵ)Xᵀ‖²/n = ½·Σ_rows δᵀ·H·δ</c> with <c>δ = W − Ŵ</c> (the pruned
/// weights, zero elsewhere) and <c>H = 2·XᵀX/n</c>: the figure SparseGPT and Wanda are judged by.
/// </summary>
internal static class PruningObjective
{
    /// <summary>Rows per GEMM tile: a few MB of float64 scratch for 4096-wide layers.</summary>
    private const int TileRows = 128;

    /// <summary>The objective against the context's Hessian, or NaN when the context has none with samples.</summary>
    public static double FromContext(string method, DenseTensor weight, SparsityMask mask, CompressionContext context)
    {
        HessianAccumulator? accumulator = PruningGuards.OptionalHessian(method, weight, context);
        return accumulator is null ? double.NaN : Compute(weight, mask, accumulator.GetHessian(), context.CancellationToken);
    }

    /// <summary>½·Σ_r δ_rᵀ·H·δ_r for a c × c row-major <paramref name="hessian"/>.</summary>
    /// <remarks>Accumulated in float64: the sum runs over rows·c² products of widely varying size, and float32 would
    /// lose the small differences between pruners that the figure exists to show.</remarks>
    public static double Compute(DenseTensor weight, SparsityMask mask, double[] hessian, CancellationToken cancellationToken)
    {
        int rows = weight.Rows, columns = weight.Columns;
        if (rows == 0 || columns == 0)
        {
            return 0;
        }

        byte[] kept = mask.ToBytes();
        ReadOnlySpan<float> w = weight.Span;
        int tile = Math.Min(TileRows, rows);
        var delta = new double[tile * columns];
        var product = new double[tile * columns];
        double total = 0;
        for (int first = 0; first < rows; first += tile)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(tile, rows - first);
            bool any = false;
            for (int i = 0; i < count * columns; i++)
            {
                long flat = (long)first * columns + i;
                bool prunedHere = (kept[flat >> 3] & (1 << (int)(flat & 7))) == 0;
                double d = prunedHere ? w[(int)flat] : 0;
                delta[i] = d;
                any |= d != 0;
            }

            if (!any)
            {
                continue;
            }

            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, count, columns, columns,
                1.0, delta, columns, hessian, columns, 0.0, product, columns);
            for (int r = 0; r < count; r++)
            {
                total += TensorPrimitives.Dot<double>(product.AsSpan(r * columns, columns), delta.AsSpan(r * columns, columns));
            }
        }

        return total / 2;
    }
}
