// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using Compression.Distillation;

namespace Compression;

/// <summary>
/// What <see cref="Reconstructor"/> does to a model: the compressor whose results are refitted (any
/// <see cref="ICompressor"/> returning an <see cref="ITunableTensor"/>: RTN or GPTQ with continuous scales, a pruner, a
/// low-rank factorisation, a residual of them), how the fit runs, and which linear layers.
/// </summary>
/// <remarks>Targets and ignores use <see cref="QuantizerOptions.Matches"/>'s patterns (<c>Linear</c>, globs, <c>re:</c>).</remarks>
public sealed record ReconstructorOptions
{
    /// <summary>Creates options around the compressor to refit.</summary>
    public ReconstructorOptions(ICompressor compressor) => Compressor = compressor;

    /// <summary>The tensor-level compressor applied to every targeted layer before its continuous parameters are fitted.</summary>
    public ICompressor Compressor
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Compressor));
    }

    /// <summary>How each layer's fit runs (iterations, dampening, whether an unimproved fit keeps the compressor's result).</summary>
    public LayerReconstructionOptions Reconstruction
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Reconstruction));
    } = LayerReconstructionOptions.Default;

    /// <summary>Which linear layers to compress and refit. Default: every one (<c>Linear</c>).</summary>
    public IReadOnlyList<string> Targets { get; init; } = ["Linear"];

    /// <summary>Linear layers left as they are. Default: the head (<c>lm_head</c>).</summary>
    public IReadOnlyList<string> Ignore { get; init; } = ["lm_head"];

    internal QuantizerOptions Selection => new() { Targets = Targets, Ignore = Ignore };
}
