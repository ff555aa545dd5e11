// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.LowRank;

/// <summary>Which SVD computes a factorisation.</summary>
public enum SvdSolver
{
    /// <summary>Randomized when the matrix is large (min(m, n) ≥ 512) and the rank at most half of it; exact otherwise.</summary>
    Auto,

    /// <summary>Every singular triplet (<see cref="SingularValueDecomposition.Exact(Compression.Tensors.DenseTensor, System.Threading.CancellationToken)"/>).</summary>
    Exact,

    /// <summary>The leading triplets by randomized range finding (<see cref="RandomizedSvdOptions"/>).</summary>
    Randomized,
}
