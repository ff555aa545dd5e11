// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Threading;
using System.Threading.Tasks;
using Compression.Numerics;
using Compression.Tensors;
using Microsoft.Extensions.Logging;

namespace Compression.Pruning;

/// <summary>
/// SparseGPT ("SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot", Frantar and Alistarh, 2023):
/// prunes a weight column by column, choosing the mask adaptively from w²/[U_jj]² and reconstructing the kept weights
/// through the inverse of the layer's input Hessian H = 2·XᵀX/n (the optimal brain surgeon update, applied row by row
/// with one shared factor), so that ‖(W − Ŵ)·Xᵀ‖² stays small. Unstructured or N:M.
/// </summary>
/// <remarks>
/// <para>Steps (docs/pruning.md has the maths): inputs never active (H_jj = 0) get H_jj = 1 and a zero weight column;
/// λ = <see cref="SparseGptOptions.DampeningPercent"/>·mean(diag H) is added to the diagonal and U, the upper Cholesky
/// factor of (H + λI)⁻¹, is computed in float64 (λ grows by <see cref="SparseGptOptions.DampeningGrowth"/> while the
/// factorization fails, each retry logged). Then, in blocks of <see cref="SparseGptOptions.BlockSize"/> columns: when
/// the sweep reaches the first column of a mask block, the mask of that block is chosen from the current weights
/// (unstructured: the round(s·count) smallest w²/U_jj² of the block, all rows together; N:M: per row the M − N smallest
/// of each group of M); each pruned weight w_j becomes 0 and its error e = w_j/U_jj is fed to the rest of the block at
/// once; after the block the remaining columns get the batched update W −= E·U[block, rest] (one matrix product).
/// Weights are float32 during the sweep, as in the reference implementation; U is float64 for the mask scores and
/// float32 for the updates.</para>
/// <para>Rows are independent given U and the mask, so they run in parallel; the unstructured mask selection couples
/// all rows of a mask block and runs between the row sweeps. Progress is reported per block, cancellation checked per
/// block. The report's objective is ‖(W − Ŵ)·Xᵀ‖²/n = ½·Σ_rows δᵀHδ with the undamped H, in float64.</para>
/// </remarks>
/// <example>
/// <code>
/// var hessian = new HessianAccumulator(weight.Columns);
/// foreach (DenseTensor batch in layerInputs) hessian.Add(batch);
/// var sparseGpt = new SparseGptPruner(SparseGptOptions.TwoFour);
/// PrunedTensor pruned = sparseGpt.Prune(weight, CompressionContext.Default with { InputHessian = hessian });
/// Console.WriteLine($"{pruned.Report!.Sparsity:P0} pruned, objective {pruned.Report.Objective:G4}");
/// </code>
/// </example>
public sealed class SparseGptPruner : ICompressor
{
    // Rows per parallel work item of the sweep: enough work per task to amortize scheduling on narrow blocks.
    private const int TileRows = 16;

    /// <summary>Creates a pruner.</summary>
    /// <exception cref="ArgumentException">The options are inconsistent (see <see cref="SparseGptOptions.Validate()"/>).</exception>
    public SparseGptPruner(SparseGptOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    /// <summary>The options.</summary>
    public SparseGptOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "sparsegpt";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.InputHessian;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context) => Prune(weight, context);

    /// <summary>Prunes with a typed result (same checks as <see cref="Compress"/>).</summary>
    /// <exception cref="ArgumentException">The weight is not a finite matrix, the Hessian is missing, of the wrong size or
    /// not finite, or N:M does not fit the columns.</exception>
    /// <exception cref="InvalidOperationException">H + λI could not be factorized within
    /// <see cref="SparseGptOptions.MaxDampeningAttempts"/> attempts.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public PrunedTensor Prune(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        Options.Validate(weight.Rows, weight.Columns);
        double[] hessian = context.InputHessian!.GetHessian();
        ValidateHessian(hessian, weight.Columns, nameof(context));
        return Run(weight, hessian, context);
    }

    /// <summary>Prunes against an explicit Hessian (c × c, row-major), for tests and callers with their own statistics.</summary>
    /// <exception cref="ArgumentException">The weight or the Hessian is invalid.</exception>
    internal PrunedTensor Prune(DenseTensor weight, double[] hessian, CompressionContext? context = null)
    {
        context ??= CompressionContext.Default;
        CompressorArguments.Validate(WeightOnly.Instance, weight, context);
        ArgumentNullException.ThrowIfNull(hessian);
        Options.Validate(weight.Rows, weight.Columns);
        ValidateHessian(hessian, weight.Columns, nameof(hessian));
        return Run(weight, hessian, context);
    }

    private static void ValidateHessian(double[] hessian, int columns, string paramName)
    {
        if (hessian.Length != (long)columns * columns)
        {
            throw new ArgumentException($"sparsegpt: the Hessian holds {hessian.Length} values; the weight's {columns} columns need {columns}×{columns}.", paramName);
        }

        // Any NaN or ±∞ makes the sum non-finite (a finite sum cannot hide one), so the scan runs only when one is there.
        bool scan = !double.IsFinite(TensorPrimitives.Sum<double>(hessian));
        for (int i = 0; scan && i < hessian.Length; i++)
        {
            if (!double.IsFinite(hessian[i]))
            {
                throw new ArgumentException(
                    $"sparsegpt: the input Hessian holds {hessian[i]} at ({i / columns}, {i % columns}); it must be finite (check the calibration activations for overflow).",
                    paramName);
            }
        }

        for (int j = 0; j < columns; j++)
        {
            if (hessian[j * columns + j] < 0)
            {
                throw new ArgumentException(
                    $"sparsegpt: the input Hessian has H[{j},{j}] = {hessian[j * columns + j]} < 0; a Hessian 2·XᵀX/n has a non-negative diagonal.", paramName);
            }
        }
    }

    private PrunedTensor Run(DenseTensor weight, double[] hessian, CompressionContext context)
    {
        var clock = Stopwatch.StartNew();
        int rows = weight.Rows, columns = weight.Columns;
        float[] w = weight.Span.ToArray();
        bool[] keep = new bool[rows * columns];
        Array.Fill(keep, true);

        // Dead inputs: no calibration signal, so their weights cannot matter to the objective; they are zeroed, and H
        // gets a unit diagonal there (in the working copy) so it stays invertible.
        double[] h = (double[])hessian.Clone();
        for (int j = 0; j < columns; j++)
        {
            if (h[j * columns + j] == 0)
            {
                h[j * columns + j] = 1;
                for (int r = 0; r < rows; r++)
                {
                    w[r * columns + j] = 0;
                }
            }
        }

        if (rows > 0 && columns > 0)
        {
            double[] upper64 = Factorize(h, columns, context);
            Sweep(w, keep, upper64, rows, columns, context);
        }

        SparsityMask mask = SparsityMask.FromPredicate(rows, columns, keep, static (k, i) => k[i]);

        // δ = W − Ŵ against the caller's weight and undamped H (dead inputs have zero rows and columns there, so their
        // zeroed weights do not count).
        double[] delta = GC.AllocateUninitializedArray<double>(rows * columns);
        ReadOnlySpan<float> original = weight.Span;
        for (int i = 0; i < delta.Length; i++)
        {
            delta[i] = (double)original[i] - w[i];
        }

        double objective = rows == 0 || columns == 0 ? 0 : SumOfQuadraticForms(delta, rows, columns, hessian, context.CancellationToken) / 2;
        var report = new PruningReport(Name, mask.Sparsity, objective, clock.Elapsed);
        return new PrunedTensor(new DenseTensor(w, rows, columns), mask, report);
    }

    /// <summary>U (float64, row-major) with UᵀU = (H + λI)⁻¹, raising λ geometrically while the factorization fails.</summary>
    private double[] Factorize(double[] h, int columns, CompressionContext context)
    {
        double meanDiagonal = 0;
        for (int j = 0; j < columns; j++)
        {
            meanDiagonal += h[j * columns + j];
        }

        meanDiagonal /= columns;
        double percent = Options.DampeningPercent;
        double[] damped = new double[h.Length];
        double[] upper = new double[h.Length];
        string layer = context.LayerName ?? "(unnamed layer)";
        for (int attempt = 1; ; attempt++)
        {
            h.AsSpan().CopyTo(damped);
            double lambda = percent * meanDiagonal;
            for (int j = 0; j < columns; j++)
            {
                damped[j * columns + j] += lambda;
            }

            if (Cholesky.TryUpperFactorOfInverse(damped, columns, upper, context.CancellationToken) && IsFinite(upper))
            {
                if (attempt > 1)
                {
                    context.Logger.LogInformation("sparsegpt {Layer}: H + λI factorized with λ = {Percent:G3}·mean(diag H) after {Attempts} attempts.",
                        layer, percent, attempt);
                }

                return upper;
            }

            if (attempt >= Options.MaxDampeningAttempts)
            {
                throw new InvalidOperationException(
                    $"sparsegpt{(context.LayerName is null ? "" : $" {context.LayerName}")}: the input Hessian is not positive definite even with " +
                    $"dampening λ = {percent:G3}·mean(diag H) after {attempt} Cholesky attempts (growth ×{Options.DampeningGrowth:G3}). " +
                    "Collect more calibration samples, or raise DampeningPercent or MaxDampeningAttempts.");
            }

            context.Logger.LogWarning("sparsegpt {Layer}: Cholesky of H + λI failed with λ = {Percent:G3}·mean(diag H); retrying with {Next:G3}.",
                layer, percent, percent * Options.DampeningGrowth);
            percent *= Options.DampeningGrowth;
        }
    }

    private static bool IsFinite(double[] values)
    {
        // A NaN or ±∞ anywhere makes the sum non-finite; only then (or on overflow of the sum) is every value checked.
        if (double.IsFinite(TensorPrimitives.Sum<double>(values)))
        {
            return true;
        }

        foreach (double value in values)
        {
            if (!double.IsFinite(value))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The block sweep: mask selection, per-column OBS updates inside a block, lazy updates between blocks.</summary>
    private void Sweep(float[] w, bool[] keep, double[] upper64, int rows, int columns, CompressionContext context)
    {
        float[] upper = new float[upper64.Length];
        var diagonal = new double[columns];
        for (int j = 0; j < columns; j++)
        {
            diagonal[j] = upper64[j * columns + j];
        }

        for (int i = 0; i < upper.Length; i++)
        {
            upper[i] = (float)upper64[i];
        }

        bool semi = Options.IsSemiStructured;
        int m = Options.M, pruneInGroup = Options.M - Options.N;
        int block = semi ? (Options.BlockSize >= m ? Options.BlockSize / m * m : m) : Options.BlockSize;
        block = Math.Min(block, columns);
        int maskBlock = semi ? m : Options.EffectiveMaskBlockSize;
        List<int> ends = BlockEnds(columns, block, maskBlock, semi);

        var parallel = new ParallelOptions { CancellationToken = context.CancellationToken };
        var errors = new float[rows * block];
        long maskCells = semi ? 0 : (long)rows * Math.Min(maskBlock, columns);
        if (maskCells > Array.MaxLength)
        {
            throw new ArgumentException($"sparsegpt: a mask block of {rows}×{Math.Min(maskBlock, columns)} weights is too large; lower MaskBlockSize.", "weight");
        }

        double[] scores = new double[maskCells], scratch = new double[maskCells];
        int tiles = (rows + TileRows - 1) / TileRows;
        int first = 0;
        for (int b = 0; b < ends.Count; b++)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            int end = ends[b], width = end - first;
            if (semi)
            {
                SweepRows(first, end, first, end);
            }
            else
            {
                for (int start = first; start < end;)
                {
                    if (start % maskBlock == 0)
                    {
                        SelectUnstructuredMask(w, keep, diagonal, rows, columns, start, Math.Min(start + maskBlock, columns), Options.Sparsity, scores, scratch);
                    }

                    int stop = Math.Min(end, (start / maskBlock + 1) * maskBlock);
                    SweepRows(start, stop, first, end);
                    start = stop;
                }
            }

            if (end < columns)
            {
                // The lazy batch update, one product for all rows: W[:, end:] −= E[:, block] · U[block, end:].
                Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, rows, columns - end, width, -1f, errors, block,
                    upper.AsSpan(first * columns + end), columns, 1f, w.AsSpan(end), columns);
            }

            context.Progress?.Report(new CompressionProgress("sparsegpt", context.LayerName, b + 1, ends.Count));
            first = end;
        }

        // Columns [start, stop) of every row, with the updates of each pruned weight applied up to blockEnd.
        void SweepRows(int start, int stop, int blockFirst, int blockEnd)
        {
            Parallel.For(0, tiles, parallel, t =>
            {
                int r0 = t * TileRows, r1 = Math.Min(rows, r0 + TileRows);
                for (int r = r0; r < r1; r++)
                {
                    Span<float> row = w.AsSpan(r * columns, columns);
                    Span<bool> kept = keep.AsSpan(r * columns, columns);
                    Span<float> rowErrors = errors.AsSpan(r * block, block);
                    if (semi)
                    {
                        // Each group's mask from the row as it stands when the sweep reaches the group's first column.
                        for (int g = start; g < stop; g += m)
                        {
                            SelectGroupMask(row.Slice(g, m), kept.Slice(g, m), diagonal.AsSpan(g, m), pruneInGroup);
                            PruneRowColumns(row, kept, upper, columns, g, g + m, blockFirst, blockEnd, rowErrors);
                        }
                    }
                    else
                    {
                        PruneRowColumns(row, kept, upper, columns, start, stop, blockFirst, blockEnd, rowErrors);
                    }
                }
            });
        }
    }

    /// <summary>
    /// Lazy-block ends: blocks of <paramref name="block"/> columns, except that a block ends early at the start of an
    /// unstructured mask block that would otherwise straddle its end, so that every mask block is chosen from weights
    /// with every earlier column's update applied (the mask block's columns past the lazy block would still lack
    /// the current block's updates).
    /// </summary>
    private static List<int> BlockEnds(int columns, int block, int maskBlock, bool semi)
    {
        var ends = new List<int>();
        for (int first = 0; first < columns;)
        {
            int end = Math.Min(first + block, columns);
            if (!semi)
            {
                int lastMaskStart = (end - 1) / maskBlock * maskBlock;
                if (lastMaskStart > first && Math.Min(lastMaskStart + maskBlock, columns) > end)
                {
                    end = lastMaskStart;
                }
            }

            ends.Add(end);
            first = end;
        }

        return ends;
    }

    /// <summary>
    /// One row's columns [start, stop): a pruned w_j becomes 0 and its error e = w_j/U_jj updates the row up to the
    /// block end, w_(j+1..blockEnd) −= e·U_(j, j+1..blockEnd); kept weights are left as they are (error 0).
    /// </summary>
    private static void PruneRowColumns(Span<float> row, ReadOnlySpan<bool> kept, ReadOnlySpan<float> upper, int columns, int start, int stop,
        int blockFirst, int blockEnd, Span<float> errors)
    {
        for (int j = start; j < stop; j++)
        {
            if (kept[j])
            {
                errors[j - blockFirst] = 0;
                continue;
            }

            float error = row[j] / upper[j * columns + j];
            row[j] = 0;
            errors[j - blockFirst] = error;
            int rest = blockEnd - j - 1;
            if (rest > 0 && error != 0)
            {
                Span<float> tail = row.Slice(j + 1, rest);
                TensorPrimitives.MultiplyAdd(upper.Slice(j * columns + j + 1, rest), -error, tail, tail);
            }
        }
    }

    /// <summary>N:M: in one row's group of M, prunes the <paramref name="prune"/> smallest w²/U_jj² (ties: lower column first).</summary>
    private static void SelectGroupMask(ReadOnlySpan<float> values, Span<bool> kept, ReadOnlySpan<double> diagonal, int prune)
    {
        Span<double> score = stackalloc double[16];
        for (int t = 0; t < values.Length; t++)
        {
            score[t] = Score(values[t], diagonal[t]);
        }

        for (int p = 0; p < prune; p++)
        {
            int best = -1;
            for (int t = 0; t < values.Length; t++)
            {
                if (kept[t] && (best < 0 || score[t] < score[best]))
                {
                    best = t;
                }
            }

            kept[best] = false;
        }
    }

    /// <summary>
    /// Unstructured: over columns [start, stop) of all rows, prunes exactly round(s·count) weights, those with the
    /// smallest w²/U_jj²; among equal scores the first in row-major order of the block goes first.
    /// </summary>
    private static void SelectUnstructuredMask(float[] w, bool[] keep, double[] diagonal, int rows, int columns, int start, int stop,
        double sparsity, double[] scores, double[] scratch)
    {
        int width = stop - start, count = rows * width;
        int prune = (int)Math.Round(sparsity * count, MidpointRounding.ToEven);
        if (prune == 0)
        {
            return;
        }

        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < width; c++)
            {
                scores[r * width + c] = Score(w[r * columns + start + c], diagonal[start + c]);
            }
        }

        Span<double> copy = scratch.AsSpan(0, count);
        scores.AsSpan(0, count).CopyTo(copy);
        double threshold = SelectSmallest(copy, prune - 1);
        int below = 0;
        for (int i = 0; i < count; i++)
        {
            below += scores[i] < threshold ? 1 : 0;
        }

        int ties = prune - below;
        for (int i = 0; i < count; i++)
        {
            double s = scores[i];
            if (s < threshold || (s == threshold && ties-- > 0))
            {
                keep[(i / width) * columns + start + i % width] = false;
            }
        }
    }

    /// <summary>The OBS saliency of pruning w_j: w²/[U_jj]², where U_jj² = [(H + λI)⁻¹]_jj of the columns from j on (the
    /// inverse Hessian after the earlier columns were eliminated).</summary>
    private static double Score(float value, double diagonal) => (double)value * value / (diagonal * diagonal);

    /// <summary>The <paramref name="k"/>-th smallest value (0-based) of <paramref name="values"/>, which it reorders
    /// (quickselect with a median-of-three pivot and Hoare partitioning, which splits runs of equal values evenly).</summary>
    private static double SelectSmallest(Span<double> values, int k)
    {
        int lo = 0, hi = values.Length - 1;
        while (lo < hi)
        {
            double a = values[lo], b = values[lo + (hi - lo) / 2], c = values[hi];
            double pivot = Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));
            int i = lo, j = hi;
            while (i <= j)
            {
                while (values[i] < pivot)
                {
                    i++;
                }

                while (values[j] > pivot)
                {
                    j--;
                }

                if (i <= j)
                {
                    (values[i], values[j]) = (values[j], values[i]);
                    i++;
                    j--;
                }
            }

            if (k <= j)
            {
                hi = j;
            }
            else if (k >= i)
            {
                lo = i;
            }
            else
            {
                return values[k];
            }
        }

        return values[k];
    }

    /// <summary>
    /// Σ over the rows d of <paramref name="d"/> (m × n) of dᵀ·H·d in float64 (the objective is a small difference of
    /// large terms): P = D_tile·H by the blocked GEMM, then row-wise dot products.
    /// </summary>
    private static double SumOfQuadraticForms(double[] d, int m, int n, double[] h, CancellationToken cancellationToken)
    {
        const int TileRows = 256;
        var product = new double[Math.Min(TileRows, m) * n];
        double total = 0;
        for (int first = 0; first < m; first += TileRows)
        {
            // One check per tile of rows (a 256 × n × n product): the objective of a big layer is itself seconds of work.
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(TileRows, m - first);
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, count, n, n, 1.0, d.AsSpan(first * n, count * n), n, h, n, 0.0, product, n);
            for (int r = 0; r < count; r++)
            {
                total += TensorPrimitives.Dot<double>(product.AsSpan(r * n, n), d.AsSpan((first + r) * n, n));
            }
        }

        return total;
    }

    /// <summary>Names SparseGPT in the weight checks of the explicit-Hessian entry point, which has no accumulator to check.</summary>
    private sealed class WeightOnly : ICompressor
    {
        public static WeightOnly Instance { get; } = new();

        public string Name => "sparsegpt";

        public CalibrationRequirements Requirements => CalibrationRequirements.None;

        public CompressedTensor Compress(DenseTensor weight, CompressionContext context) => throw new NotSupportedException();
    }
}
