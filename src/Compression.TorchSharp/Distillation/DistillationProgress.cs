// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.TorchSharp.Distillation;

/// <summary>Reported once per optimizer step by <see cref="Distiller.Train"/>.</summary>
/// <param name="Step">Steps taken so far (counted from 1; a resumed run starts after its checkpoint's step).</param>
/// <param name="Steps">The run's total (<see cref="DistillerOptions.Steps"/>).</param>
/// <param name="Result">The step just taken.</param>
/// <param name="Evaluation">The evaluation measured after this step, if one was due (the final evaluation, taken after
/// quantization scales are committed, is in the <see cref="DistillationReport"/> only).</param>
/// <param name="Elapsed">Wall-clock time since this call started.</param>
public sealed record DistillationProgress(int Step, int Steps, DistillationStepResult Result, DistillationEvaluation? Evaluation, TimeSpan Elapsed);
