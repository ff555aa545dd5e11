// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using Compression.LowRank;

namespace Compression;

/// <summary>
/// What <see cref="Factorizer"/> does to a model: the factorisation of each layer (rank rule, SVD, activation
/// awareness), an optional global budget that gives layers different ranks (WeLore), and which linear layers.
/// Immutable.
/// </summary>
/// <example>
/// <code>
/// // SVD-LLM at 60% of the targeted parameters, ranks spread across layers by their spectra:
/// var options = new FactorizerOptions
/// {
///     LowRank = new LowRankOptions { Whitening = ActivationWhitening.Cholesky },
///     GlobalParameterRatio = 0.6,
/// };
/// FactorizationReport report = Factorizer.Apply(model, options, calibration);
/// </code>
/// </example>
public sealed record FactorizerOptions
{
    /// <summary>The per-layer factorisation. Its <see cref="LowRankOptions.Rank"/> is used when
    /// <see cref="GlobalParameterRatio"/> is null; otherwise each layer gets the fixed rank the allocation gave it.</summary>
    public LowRankOptions LowRank
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(LowRank));
    } = new();

    /// <summary>A budget for all targeted layers together, as a share of their dense parameters in (0, 1], spread by
    /// <see cref="WeLoreRankAllocator"/> over the layers' weight spectra; layers it would not shrink stay dense. Null
    /// (the default) applies <see cref="LowRankOptions.Rank"/> to every layer alike.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside (0, 1] or NaN.</exception>
    public double? GlobalParameterRatio
    {
        get;
        init => field = value is null || (value > 0 && value <= 1) ? value
            : throw new ArgumentOutOfRangeException(nameof(GlobalParameterRatio), value, "The global parameter ratio must be in (0, 1].");
    }

    /// <summary>Which linear layers to factorise. Default: every one (<c>Linear</c>). Patterns as in
    /// <see cref="QuantizerOptions.Matches"/>.</summary>
    public IReadOnlyList<string> Targets { get; init; } = ["Linear"];

    /// <summary>Linear layers left dense. Default: the head (<c>lm_head</c>).</summary>
    public IReadOnlyList<string> Ignore { get; init; } = ["lm_head"];

    /// <summary>Whether each factorised layer is replaced by a <see cref="TorchSharp.LowRankLinear"/> (true, the
    /// default: the model really shrinks) or keeps its dense module with A·B written into the weight (false: the same
    /// function at the old size, e.g. to compare with other methods or to save a dense checkpoint).</summary>
    public bool ReplaceModules { get; init; } = true;

    /// <summary>A compressor applied to each layer first (a GPTQ or RTN quantizer, a pruner); the factorisation then
    /// fits the error it left, W − Ŵ, so the layer becomes Ŵ + A·B. With <see cref="ActivationWhitening.Eigen"/> this is
    /// EoRA. Null (the default) factorises the weight itself. The sum is written into the dense weight, so
    /// <see cref="ReplaceModules"/> must be false.</summary>
    public ICompressor? Base { get; init; }

    internal QuantizerOptions Selection => new() { Targets = Targets, Ignore = Ignore };
}
