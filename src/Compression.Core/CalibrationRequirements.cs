// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression;

/// <summary>Calibration statistics a compressor needs, so a driver can collect them before calling it.</summary>
[Flags]
public enum CalibrationRequirements
{
    /// <summary>Data-free: the weight alone suffices (round-to-nearest, magnitude pruning, plain SVD).</summary>
    None = 0,

    /// <summary>The layer's input Hessian <c>H = 2·XᵀX/n</c> from <see cref="Calibration.HessianAccumulator"/>
    /// (GPTQ, SparseGPT, activation-aware SVD; Wanda uses its diagonal).</summary>
    InputHessian = 1,
}
