// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers;
using System.Diagnostics;
using System.Numerics.Tensors;
using Compression.Tensors;

namespace Compression.Pruning;

/// <summary>
/// Wanda (Sun et al., "A Simple and Effective Pruning Approach for Large Language Models", 2023): prunes the weights
/// of lowest score <c>S_ij = |W_ij|·‖X_j‖₂</c>, where <c>‖X_j‖₂</c> is the norm of input feature j over the
/// calibration tokens, within each output row (or each N:M group). No weight update, one pass.
/// </summary>
/// <remarks>
/// <para>The norms come from the diagonal of the input Hessian <c>H = 2·XᵀX/n</c>: <c>‖X_j‖₂ = sqrt(n·H_jj/2)</c>. A factor
/// common to every column does not change any ranking, so the scores use <c>sqrt(H_jj)</c> divided by the largest of
/// them; with equal norms every factor is then exactly 1 and Wanda reproduces magnitude pruning bit for bit. Features
/// never active in calibration (H_jj = 0) score 0 and are pruned first.</para>
/// <para>Ties follow the pattern's rule: unstructured groups prune the lower index first (as
/// <see cref="MagnitudePruner"/>), N:M groups keep the lower column first (as <see cref="NofMPruner"/>). Scores are
/// float32 products, so weights whose exact scores differ by less than a rounding may tie.</para>
/// <para>The report's objective is the layer-output error <c>‖(W − Ŵ)Xᵀ‖²/n = ½·Σ_rows δᵀHδ</c>, computed in float64
/// from the full Hessian.</para>
/// </remarks>
/// <example>
/// <code>
/// var hessian = new HessianAccumulator(weight.Columns);
/// hessian.Add(layerInputs);                                   // [tokens, in]
/// PrunedTensor p = new WandaOptions { Sparsity = 0.5 }.CreateCompressor()
///     .Prune(weight, new CompressionContext { InputHessian = hessian });
/// Console.WriteLine(p.Report!.Objective);
/// </code>
/// </example>
public sealed class WandaPruner : ICompressor
{
    /// <summary>Creates a pruner.</summary>
    /// <exception cref="ArgumentException">The options' N:M pattern has N ≥ M.</exception>
    public WandaPruner(WandaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.NofM?.Validate();
        Options = options;
    }

    /// <summary>The options.</summary>
    public WandaOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "wanda";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.InputHessian;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context) => Prune(weight, context);

    /// <summary>Prunes with a typed result (same checks as <see cref="Compress"/>).</summary>
    /// <exception cref="ArgumentException">The weight is not a finite matrix; the Hessian is missing, has seen no
    /// samples, differs in width or has a non-finite or negative diagonal; or the columns are not a multiple of M.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public PrunedTensor Prune(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        Options.NofM?.ValidateColumns(Name, weight.Columns, nameof(weight));
        var clock = Stopwatch.StartNew();
        float[] factors = ColumnFactors(context.InputHessian!.GetDiagonal());
        int rows = weight.Rows, columns = weight.Columns;
        float[] scores = ArrayPool<float>.Shared.Rent(weight.Length);
        try
        {
            ReadOnlyMemory<float> scoreMemory = scores.AsMemory(0, weight.Length);
            ReadOnlyMemory<float> source = weight.Memory;
            RowParallel.For(rows, columns, context.CancellationToken, (first, count) =>
            {
                for (int r = first; r < first + count; r++)
                {
                    // Elementwise float32 |w|·f: the same rounding as a scalar loop, at SIMD width.
                    Span<float> row = scores.AsSpan(r * columns, columns);
                    TensorPrimitives.Abs(source.Span.Slice(r * columns, columns), row);
                    TensorPrimitives.Multiply(row, factors, row);
                }
            });

            SparsityMask mask = Options.NofM is { } pattern
                ? NofMSelection.Prune(scoreMemory, rows, columns, pattern.N, pattern.M, context.CancellationToken)
                : UnstructuredSelection.Prune(scoreMemory, rows, columns, Options.Sparsity, Options.Scope, context.CancellationToken);
            double objective = PruningObjective.FromContext(Name, weight, mask, context);
            return new PrunedTensor(weight, mask, new PruningReport(Name, mask.Sparsity, objective, clock.Elapsed));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scores);
        }
    }

    /// <summary>sqrt(H_jj) / max_k sqrt(H_kk), in [0, 1]: ‖X_j‖₂ up to a factor common to every column.</summary>
    private float[] ColumnFactors(double[] diagonal)
    {
        double largest = 0;
        for (int j = 0; j < diagonal.Length; j++)
        {
            if (!double.IsFinite(diagonal[j]) || diagonal[j] < 0)
            {
                throw new ArgumentException(
                    $"{Name}: the input Hessian has H[{j},{j}] = {diagonal[j]}; a Hessian 2·XᵀX/n has a finite, non-negative diagonal.", "context");
            }

            largest = Math.Max(largest, Math.Sqrt(diagonal[j]));
        }

        var factors = new float[diagonal.Length];
        for (int j = 0; j < diagonal.Length; j++)
        {
            // x / x is exactly 1 in IEEE arithmetic, so equal norms give factors of exactly 1.
            factors[j] = largest == 0 ? 0f : (float)(Math.Sqrt(diagonal[j]) / largest);
        }

        return factors;
    }
}
