// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.TorchSharp.Distillation;

/// <summary>A value of <see cref="DistillerOptions.Evaluation"/> on the student (e.g. held-out perplexity).</summary>
/// <param name="Step">The steps taken when it was measured (0: before training).</param>
/// <param name="Value">What the callback returned.</param>
public sealed record DistillationEvaluation(int Step, double Value);
