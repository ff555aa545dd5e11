// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression.Quantization.Gguf;

/// <summary>One tensor <see cref="GgufExporter"/> wrote.</summary>
/// <param name="Name">Its GGUF name (e.g. <c>blk.0.attn_q.weight</c>).</param>
/// <param name="Source">The checkpoint tensor it came from.</param>
/// <param name="Type">Its ggml type.</param>
/// <param name="Shape">Its shape, outermost first.</param>
/// <param name="RopePermuted">Whether its rows were reordered for llama.cpp's rotary embedding (Q and K projections).</param>
public sealed record GgufTensorRecord(string Name, string Source, GgmlType Type, IReadOnlyList<long> Shape, bool RopePermuted);

/// <summary>What <see cref="GgufExporter"/> wrote.</summary>
/// <param name="Path">The .gguf file.</param>
/// <param name="Tensors">The tensors, in file order.</param>
/// <param name="TokenizerModel">The <c>tokenizer.ggml.model</c> written (<c>llama</c>, or <c>none</c> without a tokenizer).</param>
/// <param name="FileBytes">The file's size.</param>
/// <param name="Elapsed">Wall-clock time.</param>
public sealed record GgufExportResult(string Path, IReadOnlyList<GgufTensorRecord> Tensors, string TokenizerModel, long FileBytes, TimeSpan Elapsed);
