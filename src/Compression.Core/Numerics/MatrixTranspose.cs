// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Numerics;

/// <summary>Whether a matrix operand of <see cref="Gemm"/> is used as stored or transposed (BLAS's <c>op(X)</c>).</summary>
public enum MatrixTranspose
{
    /// <summary><c>op(X) = X</c>: the operand is used as stored.</summary>
    None = 0,

    /// <summary><c>op(X) = Xᵀ</c>: the stored matrix is read transposed (no copy is made).</summary>
    Transpose = 1,
}
