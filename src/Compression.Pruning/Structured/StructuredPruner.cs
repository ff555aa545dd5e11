// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Compression.Tensors;

namespace Compression.Pruning;

/// <summary>
/// Structured pruning: whole output channels (rows) or input channels (columns), or groups of them such as attention
/// heads, are scored and the lowest removed, so the layer can be shrunk to a smaller dense matrix
/// (<see cref="Shrink"/>) instead of relying on sparse kernels.
/// </summary>
/// <remarks>
/// <para>Of C channels exactly <c>round(Sparsity·C)</c> are pruned, or all but <see cref="StructuredPruningOptions.Keep"/>.
/// Scores are accumulated in float64. Ties are broken by position: among equal scores the lower channel index is kept
/// first. L2 channels are ranked by their sums of squares (the square root is monotone; skipping it avoids ties its
/// rounding would create) and reported as norms.</para>
/// <para>Removing a channel of one layer changes the shapes of the layers that share it: an MLP's intermediate
/// features are up/gate rows and down columns. <see cref="SelectJoint"/> scores such a channel over all of them and
/// returns one selection to apply to each (<see cref="PruneChannels"/>, <see cref="Shrink"/>).</para>
/// <para>As an <see cref="ICompressor"/> it returns the weight at full shape with the pruned channels zeroed; Taylor
/// scores need a gradient, which only <see cref="Select"/> takes.</para>
/// </remarks>
/// <example>
/// <code>
/// var pruner = new StructuredPruningOptions { Keep = 2048 }.CreateCompressor();
/// ChannelSelection s = pruner.SelectJoint([
///     new ChannelMatrix(up, ChannelDimension.OutputChannels),
///     new ChannelMatrix(gate, ChannelDimension.OutputChannels),
///     new ChannelMatrix(down, ChannelDimension.InputChannels)]);
/// DenseTensor up2 = StructuredPruner.Shrink(up, s.KeptIndices, ChannelDimension.OutputChannels);
/// DenseTensor down2 = StructuredPruner.Shrink(down, s.KeptIndices, ChannelDimension.InputChannels);
/// </code>
/// </example>
public sealed class StructuredPruner : ICompressor
{
    private const string MethodName = "structured";

    /// <summary>Columns per task when input-channel scores are accumulated: a contiguous run of each row per task.</summary>
    private const int ColumnBlock = 256;

    /// <summary>Creates a pruner.</summary>
    public StructuredPruner(StructuredPruningOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
    }

    /// <summary>The options.</summary>
    public StructuredPruningOptions Options { get; }

    /// <inheritdoc/>
    public string Name => MethodName;

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.None;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">Also when the score is <see cref="ChannelScore.Taylor"/>, which needs the
    /// gradient that only <see cref="Select"/> takes.</exception>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Select(weight, gradient: null, context).Pruned;
    }

    /// <summary>Scores the channels of <paramref name="weight"/> along <see cref="StructuredPruningOptions.Dimension"/>,
    /// keeps the best and zeroes the rest.</summary>
    /// <param name="weight">The [out, in] weight; not modified.</param>
    /// <param name="gradient">The loss gradient of the weight, same shape; required for Taylor scores, checked but
    /// unused otherwise.</param>
    /// <param name="context">Cancellation, and an input Hessian for the report's objective; null for none.</param>
    /// <exception cref="ArgumentException">The weight or gradient is not a finite matrix of the right shape, the group
    /// size does not divide the dimension, Keep exceeds the channel count, a Taylor score has no gradient, or the
    /// context's Hessian does not match the weight.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public StructuredPruningResult Select(DenseTensor weight, DenseTensor? gradient = null, CompressionContext? context = null)
    {
        context ??= CompressionContext.Default;
        CompressorArguments.Validate(this, weight, context);
        PruningGuards.OptionalHessian(Name, weight, context);
        var clock = Stopwatch.StartNew();
        ChannelSelection selection = SelectCore([new ChannelMatrix(weight, Options.Dimension, gradient)], nameof(weight), nameof(gradient),
            context.CancellationToken);
        SparsityMask mask = ChannelMask(weight.Rows, weight.Columns, selection.KeptIndices, Options.Dimension);
        double objective = PruningObjective.FromContext(Name, weight, mask, context);
        var pruned = new PrunedTensor(weight, mask, new PruningReport(Name, mask.Sparsity, objective, clock.Elapsed));
        return new StructuredPruningResult(selection, Options.Dimension, pruned);
    }

    /// <summary>
    /// One channel selection for several matrices that share the channels: a channel's score is the sum over the
    /// matrices (for L2, the norm of all its weights together), so dependent layers shrink consistently.
    /// <see cref="StructuredPruningOptions.Dimension"/> is ignored: each matrix says its own. With one matrix the
    /// result equals <see cref="Select"/>'s.
    /// </summary>
    /// <remarks>Scores add raw weights, so a matrix of larger scale weighs more; normalize the inputs first if the
    /// matrices should count equally.</remarks>
    /// <param name="weightsSharingChannels">The matrices, at least one; each has the same size along its dimension.</param>
    /// <param name="context">Cancellation; null for none.</param>
    /// <exception cref="ArgumentException">The list is empty; a matrix is not finite, its size along its dimension
    /// differs from the first's, or a Taylor score lacks its gradient; or the group size or Keep do not fit.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public ChannelSelection SelectJoint(IReadOnlyList<ChannelMatrix> weightsSharingChannels, CompressionContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(weightsSharingChannels);
        context ??= CompressionContext.Default;
        context.CancellationToken.ThrowIfCancellationRequested();
        if (weightsSharingChannels.Count == 0)
        {
            throw new ArgumentException($"{Name}: a joint selection needs at least one matrix.", nameof(weightsSharingChannels));
        }

        for (int i = 0; i < weightsSharingChannels.Count; i++)
        {
            ChannelMatrix item = weightsSharingChannels[i] ?? throw new ArgumentException(
                $"{Name}: weightsSharingChannels[{i}] is null.", nameof(weightsSharingChannels));
            if (!Enum.IsDefined(item.Dimension))
            {
                throw new ArgumentException($"{Name}: weightsSharingChannels[{i}] has dimension {item.Dimension}.", nameof(weightsSharingChannels));
            }

            PruningGuards.FiniteMatrix(Name, item.Weight, nameof(weightsSharingChannels), $"weightsSharingChannels[{i}].Weight");
        }

        return SelectCore(weightsSharingChannels, nameof(weightsSharingChannels), nameof(weightsSharingChannels), context.CancellationToken);
    }

    /// <summary>The weight at full shape with every row (or column) not in <paramref name="keptIndices"/> zeroed: a
    /// selection applied to one of the matrices that share it.</summary>
    /// <param name="weight">The [out, in] weight; not modified.</param>
    /// <param name="keptIndices">Kept rows or columns, strictly ascending, within the dimension.</param>
    /// <param name="dimension">Rows or columns.</param>
    /// <exception cref="ArgumentException">The weight is not a finite matrix, or an index is out of range or out of order.</exception>
    public static PrunedTensor PruneChannels(DenseTensor weight, IReadOnlyList<int> keptIndices, ChannelDimension dimension)
    {
        var clock = Stopwatch.StartNew();
        PruningGuards.FiniteMatrix(MethodName, weight, nameof(weight), "the weight");
        CheckKeptIndices(weight, keptIndices, dimension);
        SparsityMask mask = ChannelMask(weight.Rows, weight.Columns, keptIndices, dimension);
        return new PrunedTensor(weight, mask, new PruningReport(MethodName, mask.Sparsity, double.NaN, clock.Elapsed));
    }

    /// <summary>The smaller dense matrix holding only the kept rows (output channels) or columns (input channels).</summary>
    /// <param name="weight">The [out, in] weight; not modified.</param>
    /// <param name="keptIndices">Kept rows or columns, strictly ascending, within the dimension.</param>
    /// <param name="dimension">Rows or columns.</param>
    /// <returns>A new [kept, in] or [out, kept] matrix.</returns>
    /// <exception cref="ArgumentException">The weight is not a matrix, or an index is out of range or out of order.</exception>
    public static DenseTensor Shrink(DenseTensor weight, IReadOnlyList<int> keptIndices, ChannelDimension dimension)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank != 2)
        {
            throw new ArgumentException($"{MethodName}: the weight must be a matrix [out, in]; got shape [{string.Join(", ", weight.Shape.ToArray())}].",
                nameof(weight));
        }

        CheckKeptIndices(weight, keptIndices, dimension);
        int rows = weight.Rows, columns = weight.Columns, kept = keptIndices.Count;
        ReadOnlySpan<float> source = weight.Span;
        if (dimension == ChannelDimension.OutputChannels)
        {
            var result = new DenseTensor(kept, columns);
            for (int i = 0; i < kept; i++)
            {
                source.Slice(keptIndices[i] * columns, columns).CopyTo(result.Span.Slice(i * columns, columns));
            }

            return result;
        }

        var narrow = new DenseTensor(rows, kept);
        Span<float> destination = narrow.Span;
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < kept; i++)
            {
                destination[r * kept + i] = source[r * columns + keptIndices[i]];
            }
        }

        return narrow;
    }

    private ChannelSelection SelectCore(IReadOnlyList<ChannelMatrix> matrices, string weightName, string gradientName, CancellationToken cancellationToken)
    {
        int size = Extent(matrices[0].Weight, matrices[0].Dimension);
        int group = Options.GroupSize;
        for (int i = 1; i < matrices.Count; i++)
        {
            int other = Extent(matrices[i].Weight, matrices[i].Dimension);
            if (other != size)
            {
                throw new ArgumentException(
                    $"{Name}: matrix {i} has {other} {Noun(matrices[i].Dimension)} but matrix 0 has {size}; joint channels must match in number.",
                    weightName);
            }
        }

        if (size % group != 0)
        {
            throw new ArgumentException(
                $"{Name}: GroupSize {group} does not divide the {size} {Noun(matrices[0].Dimension)} of the weight; a channel group must be whole.",
                weightName);
        }

        int channels = size / group;
        int keep = Options.Keep ?? (int)(channels - PruningGuards.PrunedCount(Options.Sparsity, channels));
        if (keep > channels)
        {
            throw new ArgumentException($"{Name}: Keep = {keep} exceeds the {channels} channels of the weight.", weightName);
        }

        var sums = new double[channels];
        foreach (ChannelMatrix matrix in matrices)
        {
            DenseTensor? gradient = matrix.Gradient;
            if (gradient is not null)
            {
                PruningGuards.FiniteMatrix(Name, gradient, gradientName, "the gradient");
                if (gradient.Rows != matrix.Weight.Rows || gradient.Columns != matrix.Weight.Columns)
                {
                    throw new ArgumentException(
                        $"{Name}: the gradient is {gradient.Rows}×{gradient.Columns} but the weight is {matrix.Weight.Rows}×{matrix.Weight.Columns}.",
                        gradientName);
                }
            }
            else if (Options.Score == ChannelScore.Taylor)
            {
                throw new ArgumentException(
                    $"{Name}: Taylor scores Σ|w·g| need the loss gradient of the weight: pass it to Select(weight, gradient) or in ChannelMatrix.Gradient.",
                    gradientName);
            }

            Accumulate(matrix.Weight, gradient, matrix.Dimension, Options.Score, group, sums, cancellationToken);
        }

        // Keep the highest: sort channel indices by (score descending, index ascending); C log C for C channels.
        var order = new int[channels];
        for (int c = 0; c < channels; c++)
        {
            order[c] = c;
        }

        Array.Sort(order, (a, b) => sums[a] != sums[b] ? sums[b].CompareTo(sums[a]) : a.CompareTo(b));
        int[] kept = order.AsSpan(0, keep).ToArray();
        Array.Sort(kept);
        var scores = new double[channels];
        for (int c = 0; c < channels; c++)
        {
            scores[c] = Options.Score == ChannelScore.L2 ? Math.Sqrt(sums[c]) : sums[c];
        }

        return new ChannelSelection(kept, group, scores);
    }

    /// <summary>Adds each channel's Σ|w|, Σw² or Σ|w·g| over this matrix to <paramref name="sums"/>, in float64.</summary>
    private static void Accumulate(DenseTensor weight, DenseTensor? gradient, ChannelDimension dimension, ChannelScore score, int group,
        double[] sums, CancellationToken cancellationToken)
    {
        int rows = weight.Rows, columns = weight.Columns;
        ReadOnlyMemory<float> w = weight.Memory, g = gradient?.Memory ?? ReadOnlyMemory<float>.Empty;
        var options = new ParallelOptions { CancellationToken = cancellationToken };
        if (dimension == ChannelDimension.OutputChannels)
        {
            // Per-row totals first (each task owns its rows), then grouped in a fixed order: the sums do not depend on
            // the scheduling.
            var perRow = new double[rows];
            Parallel.For(0, rows, options, r =>
            {
                double total = 0;
                ReadOnlySpan<float> wr = w.Span.Slice(r * columns, columns);
                ReadOnlySpan<float> gr = score == ChannelScore.Taylor ? g.Span.Slice(r * columns, columns) : default;
                for (int c = 0; c < columns; c++)
                {
                    total += Term(wr[c], score == ChannelScore.Taylor ? gr[c] : 0f, score);
                }

                perRow[r] = total;
            });
            for (int r = 0; r < rows; r++)
            {
                sums[r / group] += perRow[r];
            }

            return;
        }

        var perColumn = new double[columns];
        Parallel.For(0, (columns + ColumnBlock - 1) / ColumnBlock, options, block =>
        {
            int start = block * ColumnBlock, end = Math.Min(columns, start + ColumnBlock);
            for (int r = 0; r < rows; r++)
            {
                ReadOnlySpan<float> wr = w.Span.Slice(r * columns, columns);
                ReadOnlySpan<float> gr = score == ChannelScore.Taylor ? g.Span.Slice(r * columns, columns) : default;
                for (int c = start; c < end; c++)
                {
                    perColumn[c] += Term(wr[c], score == ChannelScore.Taylor ? gr[c] : 0f, score);
                }
            }
        });
        for (int c = 0; c < columns; c++)
        {
            sums[c / group] += perColumn[c];
        }
    }

    private static double Term(float w, float g, ChannelScore score) => score switch
    {
        ChannelScore.L1 => Math.Abs((double)w),
        ChannelScore.L2 => (double)w * w,
        _ => Math.Abs((double)w * g),
    };

    private static SparsityMask ChannelMask(int rows, int columns, IReadOnlyList<int> keptIndices, ChannelDimension dimension)
    {
        var keepIndex = new bool[dimension == ChannelDimension.OutputChannels ? rows : columns];
        foreach (int index in keptIndices)
        {
            keepIndex[index] = true;
        }

        var mask = new MaskBuilder(rows, columns);
        var keep = new bool[columns];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                keep[c] = keepIndex[dimension == ChannelDimension.OutputChannels ? r : c];
            }

            mask.SetKept((long)r * columns, keep);
        }

        return mask.ToMask();
    }

    private static void CheckKeptIndices(DenseTensor weight, IReadOnlyList<int> keptIndices, ChannelDimension dimension)
    {
        ArgumentNullException.ThrowIfNull(keptIndices);
        if (!Enum.IsDefined(dimension))
        {
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be OutputChannels or InputChannels.");
        }

        int size = Extent(weight, dimension);
        for (int i = 0; i < keptIndices.Count; i++)
        {
            int index = keptIndices[i];
            if ((uint)index >= (uint)size || (i > 0 && index <= keptIndices[i - 1]))
            {
                throw new ArgumentException(
                    $"{MethodName}: keptIndices[{i}] = {index}; kept indices must be strictly ascending within [0, {size}) ({Noun(dimension)} of the weight).",
                    nameof(keptIndices));
            }
        }
    }

    private static int Extent(DenseTensor weight, ChannelDimension dimension) =>
        dimension == ChannelDimension.OutputChannels ? weight.Rows : weight.Columns;

    private static string Noun(ChannelDimension dimension) => dimension == ChannelDimension.OutputChannels ? "rows" : "columns";
}
