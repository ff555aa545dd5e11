// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;
using Compression.Calibration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Compression;

/// <summary>Everything besides the weight that a compressor may use. Immutable: derive variants with <c>with</c>.</summary>
public sealed record CompressionContext
{
    /// <summary>No statistics, silent logging, no progress, no cancellation.</summary>
    public static CompressionContext Default { get; } = new();

    /// <summary>The layer's input statistics, required when <see cref="ICompressor.Requirements"/> includes
    /// <see cref="CalibrationRequirements.InputHessian"/>. Its column count must equal the weight's.</summary>
    public HessianAccumulator? InputHessian { get; init; }

    /// <summary>The result of the previous stage when compressors are chained (for example the pruner's result, whose
    /// <see cref="CompressedTensor.SparsityMask"/> a quantizer keeps); null for a first stage.</summary>
    public CompressedTensor? Prior { get; init; }

    /// <summary>The layer's name, for logs and progress (e.g. <c>model.layers.0.mlp.up_proj</c>).</summary>
    public string? LayerName { get; init; }

    /// <summary>Where diagnostics go. Silent by default.</summary>
    public ILogger Logger
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Logger));
    } = NullLogger.Instance;

    /// <summary>Receives progress of long compressions; null for none.</summary>
    public IProgress<CompressionProgress>? Progress { get; init; }

    /// <summary>Cancels a long compression.</summary>
    public CancellationToken CancellationToken { get; init; }
}
