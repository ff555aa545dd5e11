// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Distillation;

/// <summary>Why a layer-wise reconstruction fit stopped.</summary>
public enum LayerReconstructionStop
{
    /// <summary>An iteration lowered the objective by less than <see cref="LayerReconstructionOptions.RelativeTolerance"/>
    /// of its value, or the gradient vanished.</summary>
    Converged,

    /// <summary><see cref="LayerReconstructionOptions.MaxIterations"/> iterations ran.</summary>
    MaxIterations,

    /// <summary>No step along the search direction (nor along the steepest descent) lowered the objective: the float32
    /// parameters sit at a minimum to their own resolution.</summary>
    NoDescent,
}
