// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Collections.Generic;

namespace Compression.Quantization.Gguf;

/// <summary>One tensor <see cref="GgufExporter"/> wrote.</summary>
/// <param name="Name">Its GGUF name (e.g. <c>blk.0.attn_q.weight</c>).</param>
/// <param name="Source">The checkpoint tensor it came from.</param>
/// <param name="Type">Its ggml type.</param>
/// <param name="Shape">Its shape, outermost first.</param>
/// <param name="RopePermuted">Whether its rows were reordered for llama.cpp's rotary embedding (Q and K projections).</param>
public sealed record GgufTensorRecord(string Name, string Source, GgmlType Type, IReadOnlyList<long> Shape, bool RopePermuted);
