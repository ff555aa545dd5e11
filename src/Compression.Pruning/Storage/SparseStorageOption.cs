// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Pruning.Storage;

/// <summary>One candidate layout of <see cref="SparseStorage.Compare"/>.</summary>
/// <param name="Kind">The layout's <see cref="CompressedTensor.Kind"/>: "2:4", "bsr", "csr", "pruned" (bitmask) or "dense".</param>
/// <param name="StorageBits">The exact StorageBits the layout would report, indices and pointers included.</param>
public sealed record SparseStorageOption(string Kind, long StorageBits);
