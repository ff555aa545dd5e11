// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.TorchSharp.Distillation;

/// <summary>One optimizer step of a <see cref="Distiller"/> run: the loss and its terms, averaged over the step's
/// micro-batches (<see cref="DistillerOptions.GradientAccumulationSteps"/>).</summary>
/// <param name="Step">The step, counted from 1.</param>
/// <param name="LearningRate">The rate the step used (peak × schedule multiplier).</param>
/// <param name="Loss">The total objective that was minimised.</param>
/// <param name="Logit">The logit-distillation term (divergence of the softened distributions, before its weight).</param>
/// <param name="Label">The cross-entropy on the next-token labels (before its weight).</param>
/// <param name="Hidden">The hidden-state matching term (before its weight).</param>
/// <param name="Attention">The attention matching term (before its weight).</param>
/// <param name="GradientNorm">The global L2 norm of the trainable parameters' gradients before clipping.</param>
public sealed record DistillationStepResult(int Step, double LearningRate, double Loss, double Logit, double Label, double Hidden,
    double Attention, double GradientNorm);
