// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Collections.Generic;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Models;

/// <summary>
/// A decoder-only language model: token ids [batch, time] (int64) in, next-token logits [batch, time, vocabulary]
/// (float32) out. Parameter names are the Hugging Face checkpoint's (<c>model.layers.0.self_attn.q_proj.weight</c>,
/// <c>transformer.h.0.attn.c_attn.weight</c>), so compression reports and saved checkpoints use the names users know.
/// </summary>
public abstract class CausalLanguageModel : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the module.</summary>
    protected CausalLanguageModel(string name)
        : base(name)
    {
    }

    /// <summary>The vocabulary size (logits per position).</summary>
    public abstract int VocabularySize { get; }

    /// <summary>The longest sequence the model was trained for (learned positions or the RoPE table's length).</summary>
    public abstract int ContextLength { get; }

    /// <summary>The Hugging Face architecture name (<c>LlamaForCausalLM</c>, <c>GPT2LMHeadModel</c>).</summary>
    public abstract string Architecture { get; }

    /// <summary>
    /// The checkpoint tensor a parameter is loaded from, and whether it is stored transposed (GPT-2's <c>Conv1D</c>
    /// keeps [in, out]); alternatives are tried in order (a tied head, a missing <c>transformer.</c> prefix).
    /// </summary>
    internal abstract IEnumerable<(string Name, bool Transposed)> CheckpointNames(string parameterName);

    /// <summary>The hidden states entering the first block (embeddings; positions where they are learned).</summary>
    internal abstract Tensor Embed(Tensor input);

    /// <summary>The repeated blocks in order, each mapping hidden states to hidden states, with their name prefixes
    /// (<c>model.layers.3</c>): the unit of block-by-block calibration.</summary>
    internal abstract IReadOnlyList<(string Prefix, nn.Module<Tensor, Tensor> Block)> Blocks { get; }
}
