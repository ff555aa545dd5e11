// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Quantization;

/// <summary>The integer grid of symmetric quantization with b bits.</summary>
public enum SymmetricRange
{
    /// <summary>q ∈ [−(2^(b−1) − 1), 2^(b−1) − 1], scale = absmax / (2^(b−1) − 1): the grid is symmetric about zero,
    /// ±absmax are exact, and the code −2^(b−1) is unused. The default: sign symmetry is what symmetric promises.</summary>
    Restricted,

    /// <summary>q ∈ [−2^(b−1), 2^(b−1) − 1], scale = absmax / ((2^b − 1)/2) (torchao, compressed-tensors): uses all
    /// 2^b codes, a slightly finer step, but +absmax clamps to (2^(b−1) − 1)·scale.</summary>
    Full,
}
