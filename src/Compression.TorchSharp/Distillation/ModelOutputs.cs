// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using Compression.TorchSharp.Models;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// What one run of a <see cref="CausalLanguageModel"/> produced (<see cref="CausalLanguageModel.Run"/>): the logits and,
/// when asked for, the hidden states and attention probabilities. It owns the tensors: disposing it disposes them.
/// </summary>
public sealed class ModelOutputs : IDisposable
{
    /// <summary>Takes ownership of the given tensors.</summary>
    /// <param name="logits">Logits [batch, time, vocabulary].</param>
    /// <param name="hiddenStates">The embeddings' output then each block's output, each [batch, time, hidden]; empty when not captured.</param>
    /// <param name="attentions">Each block's attention probabilities [batch, heads, time, time]; empty when not captured.</param>
    public ModelOutputs(Tensor logits, IReadOnlyList<Tensor>? hiddenStates = null, IReadOnlyList<Tensor>? attentions = null)
    {
        ArgumentNullException.ThrowIfNull(logits);
        Logits = logits;
        HiddenStates = hiddenStates?.ToArray() ?? [];
        Attentions = attentions?.ToArray() ?? [];
    }

    /// <summary>Next-token logits [batch, time, vocabulary], equal bit for bit to the model's <c>forward</c>.</summary>
    public Tensor Logits { get; }

    /// <summary>The hidden states [batch, time, hidden]: index 0 is the embeddings' output (the input of the first
    /// block), index i the output of block i (before the final norm); layers + 1 tensors, or none when not captured.</summary>
    public IReadOnlyList<Tensor> HiddenStates { get; }

    /// <summary>Each block's attention probabilities [batch, heads, time, time] (rows sum to 1, zero above the
    /// diagonal); one per layer, or none when not captured.</summary>
    public IReadOnlyList<Tensor> Attentions { get; }

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        Logits.Dispose();
        foreach (Tensor tensor in HiddenStates.Concat(Attentions))
        {
            tensor.Dispose();
        }
    }
}
