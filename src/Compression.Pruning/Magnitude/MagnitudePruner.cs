// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using Compression.Tensors;

namespace Compression.Pruning;

/// <summary>
/// Unstructured magnitude pruning: the weights of smallest |w| are set to zero, per layer or per output row, or
/// across several layers at once with <see cref="PruneGlobal"/>. Data-free.
/// </summary>
/// <remarks>
/// <para>A comparison group of n weights loses exactly <c>round(Sparsity·n)</c> (halves to even). Ties are broken by
/// position so the result never depends on thread timing: among equal magnitudes the lower flat (row-major) index is
/// pruned first. −0 and +0 are equal magnitudes.</para>
/// <para>Selection is exact and linear in the weight count (a radix select on the magnitudes' bit patterns, no sort
/// of the layer). When the context carries an input Hessian, the report's objective is the layer-output error
/// <c>‖(W − Ŵ)Xᵀ‖²/n</c>; otherwise NaN.</para>
/// </remarks>
public sealed class MagnitudePruner : ICompressor
{
    internal const string MethodName = "magnitude";

    /// <summary>Creates a pruner.</summary>
    public MagnitudePruner(MagnitudePruningOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
    }

    /// <summary>The options.</summary>
    public MagnitudePruningOptions Options { get; }

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.None;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Prune(weight, context);
    }

    /// <summary>Prunes with a typed result (same checks as <see cref="Compress"/>).</summary>
    /// <exception cref="ArgumentException">The weight is not a finite matrix, or the context's Hessian does not match it.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public PrunedTensor Prune(DenseTensor weight, CompressionContext? context = null)
    {
        context ??= CompressionContext.Default;
        CompressorArguments.Validate(this, weight, context);
        PruningGuards.OptionalHessian(Name, weight, context);
        var clock = Stopwatch.StartNew();
        // |w| ranks the same under both norms, so the weights are their own scores: nothing is copied.
        SparsityMask mask = UnstructuredSelection.Prune(weight.Memory, weight.Rows, weight.Columns, Options.Sparsity, Options.Scope,
            context.CancellationToken);
        double objective = PruningObjective.FromContext(Name, weight, mask, context);
        return new PrunedTensor(weight, mask, new PruningReport(Name, mask.Sparsity, objective, clock.Elapsed));
    }

    /// <summary>
    /// Global magnitude pruning: one threshold over all <paramref name="weights"/> together, so layers of small weights
    /// lose more than layers of large ones. Exactly <c>round(sparsity·N)</c> of the N weights in total are pruned;
    /// ties are broken by (tensor index, flat index), lowest first, which is what pruning the concatenation of the
    /// flattened tensors would do.
    /// </summary>
    /// <param name="weights">The matrices, each [out, in]; none is modified.</param>
    /// <param name="sparsity">The fraction of all weights pruned, in [0, 1).</param>
    /// <param name="context">Cancellation (the Hessian, which belongs to one layer, is not used); null for none.</param>
    /// <returns>One pruned tensor per input, in order; each report holds that tensor's own sparsity and a NaN objective.</returns>
    /// <exception cref="ArgumentException">A weight is null, not a matrix or not finite.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sparsity"/> is outside [0, 1) or NaN.</exception>
    /// <example>
    /// <code>
    /// IReadOnlyList&lt;PrunedTensor&gt; pruned = MagnitudePruner.PruneGlobal([q, k, v, o], sparsity: 0.6);
    /// </code>
    /// </example>
    public static IReadOnlyList<PrunedTensor> PruneGlobal(IReadOnlyList<DenseTensor> weights, double sparsity, CompressionContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        PruningGuards.Sparsity(sparsity, nameof(sparsity));
        context ??= CompressionContext.Default;
        context.CancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        var segments = new ReadOnlyMemory<float>[weights.Count];
        long total = 0;
        for (int t = 0; t < weights.Count; t++)
        {
            PruningGuards.FiniteMatrix(MethodName, weights[t], nameof(weights), $"weights[{t}]");
            segments[t] = weights[t].Memory;
            total += weights[t].Length;
        }

        long pruned = PruningGuards.PrunedCount(sparsity, total);
        var cursor = new ThresholdCursor(pruned == 0 ? default : ThresholdSelection.Select(segments, pruned), pruned);
        var masks = new SparsityMask[weights.Count];
        for (int t = 0; t < weights.Count; t++)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            // One cursor through every tensor in order: the tie quota is spent by (tensor, flat index).
            masks[t] = Walk(weights[t], ref cursor);
        }

        var result = new PrunedTensor[weights.Count];
        for (int t = 0; t < weights.Count; t++)
        {
            result[t] = new PrunedTensor(weights[t], masks[t], new PruningReport(MethodName, masks[t].Sparsity, double.NaN, clock.Elapsed));
        }

        return result;
    }

    private static SparsityMask Walk(DenseTensor weight, ref ThresholdCursor cursor)
    {
        var mask = new MaskBuilder(weight.Rows, weight.Columns);
        var keep = new bool[weight.Columns];
        for (int r = 0; r < weight.Rows; r++)
        {
            ReadOnlySpan<float> row = weight.Span.Slice(r * weight.Columns, weight.Columns);
            for (int c = 0; c < row.Length; c++)
            {
                keep[c] = cursor.Keeps(row[c]);
            }

            mask.SetKept((long)r * weight.Columns, keep);
        }

        return mask.ToMask();
    }
}
