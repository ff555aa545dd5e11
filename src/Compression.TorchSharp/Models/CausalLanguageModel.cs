// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using Compression.Safetensors;
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

    /// <summary>The config.json text the model was loaded from (null when built otherwise); saving writes it back.</summary>
    internal string? SourceConfigJson { get; set; }

    /// <summary>Each parameter's dtype in the checkpoint it was loaded from; saving writes the same dtype.</summary>
    internal Dictionary<string, SafetensorsDType> SourceDTypes { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Every submodule once, under its checkpoint-style name: TorchSharp also lists modules under the paths of the
    /// fields that hold them (<c>model._layers.0</c>), which never start a segment with '_' in checkpoint names.
    /// </summary>
    internal IEnumerable<(string Name, nn.Module Module)> CanonicalModules() =>
        named_modules()
            .GroupBy(m => m.module, ReferenceEqualityComparer.Instance)
            .Select(g => (g.Select(m => m.name).OrderBy(n => n.Split('.').Any(s => s.StartsWith('_')) ? 1 : 0).ThenBy(n => n.Length).First(),
                          (nn.Module)g.Key!));

    /// <summary>Replaces the linear module named <paramref name="name"/> (e.g. <c>model.layers.0.mlp.down_proj</c>).</summary>
    /// <exception cref="ArgumentException">No module of that name, or its owner cannot replace it.</exception>
    internal void ReplaceLinear(string name, nn.Module<Tensor, Tensor> replacement)
    {
        int dot = name.LastIndexOf('.');
        string ownerName = dot < 0 ? "" : name[..dot], child = name[(dot + 1)..];
        nn.Module? owner = ownerName.Length == 0 ? this : named_modules().FirstOrDefault(m => m.name == ownerName).module;
        if (owner is not ILinearOwner replaceable)
        {
            throw new ArgumentException($"'{name}' is not a replaceable linear layer of {Architecture}.", nameof(name));
        }

        replaceable.Replace(child, replacement);
    }
}
