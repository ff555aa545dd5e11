// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.TorchSharp.Models;

namespace Compression.TorchSharp.Distillation;

/// <summary>What <see cref="CausalLanguageModel.Run"/> returns besides the logits, which it always returns.</summary>
[Flags]
public enum OutputCapture
{
    /// <summary>Only the logits.</summary>
    Logits = 0,

    /// <summary>The hidden states: the embeddings' output, then each block's output (layers + 1 tensors).</summary>
    HiddenStates = 1,

    /// <summary>Each block's attention probabilities [batch, heads, time, time].</summary>
    Attentions = 2,
}
