// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.TorchSharp.Distillation;

/// <summary>How the student's next-token distribution is compared with the teacher's (see <see cref="DistillationLosses"/>).</summary>
public enum Divergence
{
    /// <summary>KL(p_teacher ‖ p_student), Hinton et al.'s soft-target loss: mean-seeking, the student covers every
    /// token the teacher gives mass to.</summary>
    ForwardKl,

    /// <summary>KL(p_student ‖ p_teacher), MiniLLM's choice: mode-seeking, the student concentrates on the teacher's
    /// likely tokens.</summary>
    ReverseKl,

    /// <summary>The generalised Jensen–Shannon divergence JSD(β) of GKD (Agarwal et al., 2024), between the two.</summary>
    JensenShannon,
}
