// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Pruning;

/// <summary>Which weights compete with each other in unstructured pruning: the target sparsity is met within each
/// comparison group.</summary>
public enum PruningScope
{
    /// <summary>The whole matrix is one group: one threshold for the layer (classic magnitude pruning).</summary>
    PerLayer,

    /// <summary>Every output row is its own group, pruned to the same sparsity (Wanda's per-output comparison, which the
    /// paper finds markedly better for LLMs than a per-layer one).</summary>
    PerRow,
}
