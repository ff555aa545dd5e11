// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using Compression.TorchSharp.Distillation;

namespace Compression;

/// <summary>What a <see cref="Distiller.Train"/> run did.</summary>
/// <param name="History">Every step's loss from step 1, including the steps a resumed run restored from its checkpoint.</param>
/// <param name="Evaluations">The evaluation callback's values (step 0 before training, then every
/// <see cref="DistillerOptions.EvaluateEvery"/> steps and at the end), including restored ones.</param>
/// <param name="Trainable">The parts that trained (after resolving an automatic choice).</param>
/// <param name="TrainableParameters">The number of values trained: every element of the selected tensors (scales,
/// factors, adapter values, norms…) except the pruned (zero) entries of masked weights, plus the distillation loss's own
/// projections.</param>
/// <param name="ResumedFromStep">The checkpoint step the run resumed from; 0 for a fresh run.</param>
/// <param name="Elapsed">Wall-clock time of this call.</param>
public sealed record DistillationReport(IReadOnlyList<DistillationStepResult> History, IReadOnlyList<DistillationEvaluation> Evaluations,
    TrainableParts Trainable, long TrainableParameters, int ResumedFromStep, TimeSpan Elapsed)
{
    /// <summary>The steps taken in total (the last step of <see cref="History"/>).</summary>
    public int Steps => History.Count == 0 ? 0 : History[^1].Step;

    /// <summary>The mean loss of the first and the last <paramref name="window"/> steps (window clipped to the history),
    /// a less noisy before/after than single steps.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="window"/> is not positive.</exception>
    /// <exception cref="InvalidOperationException">The history is empty.</exception>
    public (double First, double Last) LossTrend(int window = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        if (History.Count == 0)
        {
            throw new InvalidOperationException("The run took no step.");
        }

        int n = Math.Min(window, History.Count);
        double first = 0, last = 0;
        for (int i = 0; i < n; i++)
        {
            first += History[i].Loss;
            last += History[History.Count - 1 - i].Loss;
        }

        return (first / n, last / n);
    }
}
