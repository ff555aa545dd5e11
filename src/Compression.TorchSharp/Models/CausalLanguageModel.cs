// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using Compression.Safetensors;
using Compression.TorchSharp.Distillation;
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

    /// <summary>The width of the residual stream (the last dimension of every hidden state).</summary>
    public abstract int HiddenSize { get; }

    /// <summary>The number of repeated blocks (decoder layers).</summary>
    public int LayerCount => Blocks.Count;

    /// <summary>
    /// Runs the model on token ids [batch, time] (int64) and returns the logits together with the intermediate
    /// tensors <paramref name="capture"/> asks for: the hidden states entering the first block and leaving each block
    /// (<see cref="LayerCount"/> + 1 tensors [batch, time, <see cref="HiddenSize"/>], before the final norm) and each
    /// block's attention probabilities [batch, heads, time, time].
    /// </summary>
    /// <remarks>
    /// The logits are computed by the same operations as <c>forward</c>, in the same order, so they are equal bit for
    /// bit. Autograd records as usual: run a teacher under <c>torch.no_grad()</c> and a student with gradients. The
    /// returned tensors belong to the <see cref="ModelOutputs"/>, not to any dispose scope: dispose it. Attention maps
    /// are captured by the attention modules themselves while the call lasts, so one model must not run two captures
    /// of attention at once on different threads; <c>forward</c> and uncaptured runs are unaffected.
    /// </remarks>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not a rank-2 int64 tensor.</exception>
    public ModelOutputs Run(Tensor input, OutputCapture capture)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 2 || input.dtype != ScalarType.Int64)
        {
            throw new ArgumentException($"Token ids must be int64 [batch, time]; got {input.dtype} [{string.Join(", ", input.shape)}].", nameof(input));
        }

        bool hiddenStates = capture.HasFlag(OutputCapture.HiddenStates);
        var hidden = new List<Tensor>();
        var attentions = new List<Tensor>();
        IAttentionCapture[] sinks = capture.HasFlag(OutputCapture.Attentions) ? modules().OfType<IAttentionCapture>().ToArray() : [];
        try
        {
            foreach (IAttentionCapture sink in sinks)
            {
                sink.Capture = attentions;
            }

            using var scope = NewDisposeScope();
            Tensor state = Embed(input);
            if (hiddenStates)
            {
                hidden.Add(state.DetachFromDisposeScope());
            }

            foreach ((string _, nn.Module<Tensor, Tensor> block) in Blocks)
            {
                state = block.call(state);
                if (hiddenStates)
                {
                    hidden.Add(state.DetachFromDisposeScope());
                }
            }

            Tensor logits = Head(state).DetachFromDisposeScope();
            return new ModelOutputs(logits, hidden, attentions);
        }
        catch
        {
            hidden.ForEach(t => t.Dispose());
            attentions.ForEach(t => t.Dispose());
            throw;
        }
        finally
        {
            foreach (IAttentionCapture sink in sinks)
            {
                sink.Capture = null;
            }
        }
    }

    /// <summary>
    /// The checkpoint tensor a parameter is loaded from, and whether it is stored transposed (GPT-2's <c>Conv1D</c>
    /// keeps [in, out]); alternatives are tried in order (a tied head, a missing <c>transformer.</c> prefix).
    /// </summary>
    internal abstract IEnumerable<(string Name, bool Transposed)> CheckpointNames(string parameterName);

    /// <summary>The hidden states entering the first block (embeddings; positions where they are learned).</summary>
    internal abstract Tensor Embed(Tensor input);

    /// <summary>The logits from the last block's hidden states: the final norm and the head, exactly as <c>forward</c>
    /// applies them.</summary>
    internal abstract Tensor Head(Tensor hidden);

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
