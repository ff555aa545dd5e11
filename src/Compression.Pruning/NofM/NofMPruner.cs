// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Diagnostics;
using Compression.Tensors;

namespace Compression.Pruning;

/// <summary>
/// N:M semi-structured magnitude pruning: in every group of M consecutive columns of each row the N weights of largest
/// |w| are kept and the rest set to zero. Data-free.
/// </summary>
/// <remarks>
/// <para>Ties are broken by position: among equal magnitudes the lower column is kept first, so a group of equal
/// weights keeps its first N. Every group keeps exactly N weights (zeros included when a group holds fewer than N
/// non-zeros), so the mask has exactly the pattern sparse kernels expect.</para>
/// <para>When the context carries an input Hessian, the report's objective is <c>‖(W − Ŵ)Xᵀ‖²/n</c>; otherwise NaN.
/// For an activation-aware N:M mask use <see cref="WandaPruner"/> with <see cref="WandaOptions.NofM"/>.</para>
/// </remarks>
public sealed class NofMPruner : ICompressor
{
    /// <summary>Creates a pruner.</summary>
    /// <exception cref="ArgumentException">The options have N ≥ M.</exception>
    public NofMPruner(NofMOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    /// <summary>The pattern.</summary>
    public NofMOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "nm";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.None;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Prune(weight, context);
    }

    /// <summary>Prunes with a typed result (same checks as <see cref="Compress"/>).</summary>
    /// <exception cref="ArgumentException">The weight is not a finite matrix, its columns are not a multiple of M, or
    /// the context's Hessian does not match it.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public PrunedTensor Prune(DenseTensor weight, CompressionContext? context = null)
    {
        context ??= CompressionContext.Default;
        CompressorArguments.Validate(this, weight, context);
        Options.ValidateColumns(Name, weight.Columns, nameof(weight));
        PruningGuards.OptionalHessian(Name, weight, context);
        var clock = Stopwatch.StartNew();
        SparsityMask mask = NofMSelection.Prune(weight.Memory, weight.Rows, weight.Columns, Options.N, Options.M, context.CancellationToken);
        double objective = PruningObjective.FromContext(Name, weight, mask, context);
        return new PrunedTensor(weight, mask, new PruningReport(Name, mask.Sparsity, objective, clock.Elapsed));
    }
}
