// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression;

/// <summary>
/// What <see cref="Pruner"/> does to a model: the pruner (any <see cref="ICompressor"/> that returns a sparsity mask:
/// magnitude, N:M, Wanda, SparseGPT, block…), which linear layers, and optionally a quantization of the survivors in
/// the same pass (prune 2:4 with SparseGPT, then GPTQ INT4, in one call).
/// </summary>
/// <remarks>Targets and ignores use <see cref="QuantizerOptions.Matches"/>'s patterns (<c>Linear</c>, globs,
/// <c>re:</c>). A pruner whose <see cref="ICompressor.Requirements"/> ask for the input Hessian (Wanda, SparseGPT)
/// needs calibration sequences, which run block by block as for GPTQ.</remarks>
public sealed record PrunerOptions
{
    /// <summary>Creates options around a pruner.</summary>
    public PrunerOptions(ICompressor pruner) => Pruner = pruner;

    /// <summary>The tensor-level pruner applied to every targeted layer.</summary>
    public ICompressor Pruner
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Pruner));
    }

    /// <summary>Which linear layers to prune. Default: every one (<c>Linear</c>).</summary>
    public IReadOnlyList<string> Targets { get; init; } = ["Linear"];

    /// <summary>Linear layers left dense. Default: the head (<c>lm_head</c>).</summary>
    public IReadOnlyList<string> Ignore { get; init; } = ["lm_head"];

    /// <summary>Quantization of the pruned layers right after each is pruned (same Hessian; GPTQ keeps the mask and
    /// feeds the pruned weights' error to the survivors); null to prune only. Its targets are ignored: the pruned layers
    /// are quantized.</summary>
    public QuantizerOptions? ThenQuantize { get; init; }

    internal QuantizerOptions Selection => new() { Targets = Targets, Ignore = Ignore };
}
