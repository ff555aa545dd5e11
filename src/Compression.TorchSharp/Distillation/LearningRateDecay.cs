// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.TorchSharp.Distillation;

/// <summary>How the learning rate falls after the warm-up (<see cref="LearningRateSchedule"/>).</summary>
public enum LearningRateDecay
{
    /// <summary>Stays at the peak.</summary>
    Constant,

    /// <summary>Falls linearly from the peak towards the minimum.</summary>
    Linear,

    /// <summary>Falls along half a cosine from the peak towards the minimum (SGDR without restarts).</summary>
    Cosine,
}
