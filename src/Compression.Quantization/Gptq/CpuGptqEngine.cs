// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;
using System.Threading.Tasks;
using Compression.Numerics;

namespace Compression.Quantization;

/// <summary>
/// GPTQ's sweep on the CPU: inside a block, each tile of rows runs <see cref="GptqKernels.QuantizeRowBlock"/> in
/// parallel; between blocks, the lazy update W[:, end:] −= E·U[block, end:] is one packed GEMM.
/// </summary>
internal sealed class CpuGptqEngine : GptqEngine
{
    private const int TileRows = 16;

    public static CpuGptqEngine Instance { get; } = new();

    public override string Device => "CPU";

    public override bool SupportsSparsityMask => true;

    public override GptqFactor? TryFactorize(double[] hessian, int n, double lambda, CancellationToken cancellationToken)
    {
        if (!GptqLinearAlgebra.TryUpperFactorOfInverse(hessian, n, lambda, out double[] upper64, cancellationToken))
        {
            return null;
        }

        var upper = new float[upper64.Length];
        Parallel.For(0, n, r =>
        {
            for (int i = r * n; i < (r + 1) * n; i++)
            {
                upper[i] = (float)upper64[i];
            }
        });

        return new HostFactor(upper);
    }

    public override void Sweep(GptqSweepProblem problem, GptqFactor factor, CompressionContext context)
    {
        (GroupedFormat format, RtnOptions rtn, int rows, int columns, int block, int groupSize, int groups, float[] wp,
            int[] groupOfColumn, SegmentParameters[] parameters, float tensorScale, byte[] codes, double[] columnLoss) = problem;
        float[] upper = ((HostFactor)factor).Upper;
        var parallel = new ParallelOptions { CancellationToken = context.CancellationToken };
        var errors = new float[rows * block];
        int blocks = problem.BlockCount;
        int tiles = (rows + TileRows - 1) / TileRows;
        bool[]? keep = problem.Keep;
        int unrepresentableRow = -1;
        for (int b = 0; b < blocks; b++)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            int first = b * block, end = Math.Min(first + block, columns), width = end - first;
            // With a mask, each worker gets a group-sized scratch for the group's values with the pruned ones at 0.
            Parallel.For(0, tiles, parallel, () => keep is null ? [] : new float[groupSize], (t, state, scratch) =>
            {
                int r0 = t * TileRows, count = Math.Min(TileRows, rows - r0);
                for (int r = r0; r < r0 + count; r++)
                {
                    ReadOnlySpan<bool> rowKeep = keep is null ? default : keep.AsSpan(r * columns, columns);
                    if (!GptqKernels.QuantizeRowBlock(format, rtn, wp.AsSpan(r * columns, columns), upper, first, end, groupSize, groupOfColumn,
                        parameters.AsSpan(r * groups, groups), tensorScale, codes.AsSpan(r * columns, columns), errors.AsSpan(r * block, width),
                        rowKeep, scratch))
                    {
                        Interlocked.CompareExchange(ref unrepresentableRow, r, -1);
                        state.Stop();
                        break;
                    }
                }

                return scratch;
            }, _ => { });

            if (unrepresentableRow >= 0)
            {
                throw new ArgumentException(
                    $"gptq: {format.Name} cannot represent 0 exactly in a group of row {unrepresentableRow}, so the pruned weights of the prior " +
                    "stage's sparsity mask cannot be kept at 0; use a format with a zero code (integer, FP, MX, NVFP4, ternary).", "context");
            }

            if (end < columns)
            {
                // The lazy batch update, one product for all rows: W[:, end:] −= E[:, block] · U[block, end:].
                Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, rows, columns - end, width, -1f, errors, block,
                    upper.AsSpan(first * columns + end), columns, 1f, wp.AsSpan(end), columns);
            }

            for (int k = 0; k < width; k++)
            {
                double loss = 0;
                for (int r = 0; r < rows; r++)
                {
                    double e = errors[r * block + k];
                    loss += e * e;
                }

                columnLoss[first + k] = loss / 2;
            }

            context.Progress?.Report(new CompressionProgress("gptq", context.LayerName, b + 1, blocks));
        }
    }

    public override double SumOfQuadraticForms(double[] delta, int rows, int columns, double[] hessian, CancellationToken cancellationToken) =>
        GptqLinearAlgebra.SumOfQuadraticForms(delta, rows, columns, hessian, cancellationToken);

    /// <summary>U as a host array, float32, row-major.</summary>
    private sealed class HostFactor(float[] upper) : GptqFactor
    {
        public float[] Upper { get; } = upper;
    }
}
