// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.LowRank;

/// <summary>The number format the two factors are stored in; reconstruction uses the rounded values.</summary>
public enum FactorPrecision
{
    /// <summary>IEEE binary32: 32 bits per factor element.</summary>
    Float32,

    /// <summary>IEEE binary16 (round to nearest even): 16 bits.</summary>
    Float16,

    /// <summary>bfloat16 (round to nearest even): 16 bits.</summary>
    BFloat16,
}
