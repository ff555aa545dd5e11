// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Diagnostics;
using System.Threading.Tasks;
using Compression.Tensors;

namespace Compression.Pruning;

/// <summary>
/// Block-sparse pruning: the weight is tiled into aligned <c>BlockRows × BlockColumns</c> blocks and the blocks of
/// smallest norm are zeroed whole, the layout block-sparse (BSR) kernels skip. Data-free.
/// </summary>
/// <remarks>
/// <para>Of B blocks exactly <c>round(Sparsity·B)</c> are pruned. Norms are accumulated in float64 (a block may hold
/// thousands of weights); ties are broken by position: among equal norms the block with the lower row-major block
/// index (block row, then block column) is pruned first.</para>
/// <para>When the context carries an input Hessian, the report's objective is <c>‖(W − Ŵ)Xᵀ‖²/n</c>; otherwise NaN.</para>
/// </remarks>
public sealed class BlockSparsePruner : ICompressor
{
    /// <summary>Creates a pruner.</summary>
    public BlockSparsePruner(BlockSparsityOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
    }

    /// <summary>The options.</summary>
    public BlockSparsityOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "block";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.None;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Prune(weight, context);
    }

    /// <summary>Prunes with a typed result (same checks as <see cref="Compress"/>).</summary>
    /// <exception cref="ArgumentException">The weight is not a finite matrix, the block does not divide its shape, or
    /// the context's Hessian does not match it.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public PrunedTensor Prune(DenseTensor weight, CompressionContext? context = null)
    {
        context ??= CompressionContext.Default;
        CompressorArguments.Validate(this, weight, context);
        int rows = weight.Rows, columns = weight.Columns, br = Options.BlockRows, bc = Options.BlockColumns;
        if (rows % br != 0 || columns % bc != 0)
        {
            throw new ArgumentException(
                $"{Name}: a {br}×{bc} block does not tile the {rows}×{columns} weight; BlockRows must divide the rows and BlockColumns the columns.",
                nameof(weight));
        }

        PruningGuards.OptionalHessian(Name, weight, context);
        var clock = Stopwatch.StartNew();
        int blockRows = rows / br, blockColumns = columns / bc, blocks = blockRows * blockColumns;
        double[] norms = BlockNorms(weight, blockRows, blockColumns, context);
        // Sorting block indices by (norm, index) costs B log B for B blocks, far below the pass over the weights.
        var order = new int[blocks];
        for (int b = 0; b < blocks; b++)
        {
            order[b] = b;
        }

        Array.Sort(order, (a, b) => norms[a] != norms[b] ? norms[a].CompareTo(norms[b]) : a.CompareTo(b));
        var prunedBlock = new bool[blocks];
        long pruned = PruningGuards.PrunedCount(Options.Sparsity, blocks);
        for (int i = 0; i < pruned; i++)
        {
            prunedBlock[order[i]] = true;
        }

        var mask = new MaskBuilder(rows, columns);
        RowParallel.For(rows, columns, context.CancellationToken, (first, count) =>
        {
            var keep = new bool[columns];
            for (int r = first; r < first + count; r++)
            {
                int blockRow = r / br;
                for (int b = 0; b < blockColumns; b++)
                {
                    keep.AsSpan(b * bc, bc).Fill(!prunedBlock[blockRow * blockColumns + b]);
                }

                mask.SetKept((long)r * columns, keep);
            }
        });
        SparsityMask result = mask.ToMask();
        double objective = PruningObjective.FromContext(Name, weight, result, context);
        return new PrunedTensor(weight, result, new PruningReport(Name, result.Sparsity, objective, clock.Elapsed));
    }

    private double[] BlockNorms(DenseTensor weight, int blockRows, int blockColumns, CompressionContext context)
    {
        int columns = weight.Columns, br = Options.BlockRows, bc = Options.BlockColumns;
        bool l2 = Options.Norm == PruningNorm.L2;
        var norms = new double[blockRows * blockColumns];
        ReadOnlyMemory<float> source = weight.Memory;
        // One task per row of blocks: each owns its slice of norms, and cancellation is checked between them. L2 ranks
        // by the sum of squares: the square root is monotone, and leaving it out avoids ties its rounding would create.
        Parallel.For(0, blockRows, new ParallelOptions { CancellationToken = context.CancellationToken }, blockRow =>
        {
            ReadOnlySpan<float> w = source.Span;
            Span<double> sums = norms.AsSpan(blockRow * blockColumns, blockColumns);
            for (int r = blockRow * br; r < (blockRow + 1) * br; r++)
            {
                for (int b = 0; b < blockColumns; b++)
                {
                    double sum = 0;
                    foreach (float value in w.Slice(r * columns + b * bc, bc))
                    {
                        double v = value;
                        sum += l2 ? v * v : Math.Abs(v);
                    }

                    sums[b] += sum;
                }
            }
        });
        return norms;
    }
}
