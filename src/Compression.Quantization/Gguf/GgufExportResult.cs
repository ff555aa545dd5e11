// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression.Quantization.Gguf;

/// <summary>What <see cref="GgufExporter"/> wrote.</summary>
/// <param name="Path">The .gguf file.</param>
/// <param name="Tensors">The tensors, in file order.</param>
/// <param name="TokenizerModel">The <c>tokenizer.ggml.model</c> written (<c>llama</c>, or <c>none</c> without a tokenizer).</param>
/// <param name="FileBytes">The file's size.</param>
/// <param name="Elapsed">Wall-clock time.</param>
public sealed record GgufExportResult(string Path, IReadOnlyList<GgufTensorRecord> Tensors, string TokenizerModel, long FileBytes, TimeSpan Elapsed);
