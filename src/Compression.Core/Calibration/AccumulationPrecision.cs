// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Calibration;

/// <summary>The floating-point type statistics are accumulated in.</summary>
public enum AccumulationPrecision
{
    /// <summary>float64: sums over millions of tokens keep ~15 digits. Default; twice the memory of <see cref="Single"/>.</summary>
    Double,

    /// <summary>float32, as the reference GPTQ code does: half the memory, ~7 digits, faster.</summary>
    Single,
}
