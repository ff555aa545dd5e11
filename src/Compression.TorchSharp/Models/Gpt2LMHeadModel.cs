// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Models;

/// <summary>
/// The Hugging Face <c>GPT2LMHeadModel</c> forward pass in float32: token and learned position embeddings, blocks of
/// LayerNorm → causal self-attention (fused <c>c_attn</c>) → residual, LayerNorm → GELU (tanh) MLP → residual, a final
/// LayerNorm and the head tied to the token embedding. The checkpoint's <c>Conv1D</c> weights, stored [in, out], are
/// held as ordinary [out, in] linear weights (transposed on load and on save).
/// </summary>
public sealed class Gpt2LMHeadModel : CausalLanguageModel
{
    private readonly Gpt2Model _transformer;

    /// <summary>Creates the model with freshly initialised weights (load a checkpoint with <see cref="HuggingFaceModels"/>).</summary>
    public Gpt2LMHeadModel(Gpt2Config config)
        : base(nameof(Gpt2LMHeadModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        _transformer = new Gpt2Model(config);
        register_module("transformer", _transformer);
    }

    /// <summary>The configuration.</summary>
    public Gpt2Config Config { get; }

    /// <inheritdoc/>
    public override int VocabularySize => Config.VocabularySize;

    /// <inheritdoc/>
    public override int ContextLength => Config.ContextLength;

    /// <inheritdoc/>
    public override string Architecture => "GPT2LMHeadModel";

    /// <inheritdoc/>
    public override int HiddenSize => Config.Width;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor hidden = _transformer.call(input);
        return hidden.matmul(_transformer.TokenEmbedding.weight!.t()).MoveToOuterDisposeScope();
    }

    internal override Tensor Embed(Tensor input) => _transformer.Embed(input);

    internal override Tensor Head(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        return _transformer.FinalNorm.call(hidden).matmul(_transformer.TokenEmbedding.weight!.t()).MoveToOuterDisposeScope();
    }

    internal override IReadOnlyList<(string Prefix, nn.Module<Tensor, Tensor> Block)> Blocks =>
        _transformer.Blocks.Select((block, i) => ($"transformer.h.{i}", (nn.Module<Tensor, Tensor>)block)).ToArray();

    internal override IEnumerable<(string Name, bool Transposed)> CheckpointNames(string parameterName)
    {
        bool conv1D = IsConv1DWeight(parameterName);
        yield return (parameterName, conv1D);
        const string Prefix = "transformer.";
        if (parameterName.StartsWith(Prefix, StringComparison.Ordinal))
        {
            yield return (parameterName[Prefix.Length..], conv1D);       // the original OpenAI checkpoints have no prefix
        }
    }

    /// <summary>Whether a parameter is stored in the checkpoint as a [in, out] <c>Conv1D</c> weight.</summary>
    internal static bool IsConv1DWeight(string parameterName) =>
        parameterName.EndsWith(".c_attn.weight", StringComparison.Ordinal) || parameterName.EndsWith(".c_proj.weight", StringComparison.Ordinal) ||
        parameterName.EndsWith(".c_fc.weight", StringComparison.Ordinal);

    private sealed class Gpt2Model : nn.Module<Tensor, Tensor>
    {
        private readonly Embedding _positions;
        private readonly ModuleList<Gpt2Block> _blocks;
        private readonly LayerNorm _finalNorm;

        public Gpt2Model(Gpt2Config config)
            : base(nameof(Gpt2Model))
        {
            TokenEmbedding = nn.Embedding(config.VocabularySize, config.Width);
            _positions = nn.Embedding(config.ContextLength, config.Width);
            _blocks = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new Gpt2Block(config)).ToArray());
            _finalNorm = nn.LayerNorm(config.Width, config.LayerNormEpsilon);
            register_module("wte", TokenEmbedding);
            register_module("wpe", _positions);
            register_module("h", _blocks);
            register_module("ln_f", _finalNorm);
        }

        public Embedding TokenEmbedding { get; }

        public LayerNorm FinalNorm => _finalNorm;

        public IEnumerable<Gpt2Block> Blocks => _blocks;

        public Tensor Embed(Tensor input)
        {
            using var scope = NewDisposeScope();
            Tensor positions = torch.arange(0, input.shape[1], 1, ScalarType.Int64, input.device);
            return (TokenEmbedding.call(input) + _positions.call(positions)).MoveToOuterDisposeScope();
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            Tensor hidden = Embed(input);
            foreach (Gpt2Block block in _blocks)
            {
                hidden = block.call(hidden);
            }

            return _finalNorm.call(hidden).MoveToOuterDisposeScope();
        }
    }

    private sealed class Gpt2Block : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm _norm1, _norm2;
        private readonly Gpt2Attention _attention;
        private readonly Gpt2Mlp _mlp;

        public Gpt2Block(Gpt2Config config)
            : base(nameof(Gpt2Block))
        {
            _norm1 = nn.LayerNorm(config.Width, config.LayerNormEpsilon);
            _attention = new Gpt2Attention(config);
            _norm2 = nn.LayerNorm(config.Width, config.LayerNormEpsilon);
            _mlp = new Gpt2Mlp(config);
            register_module("ln_1", _norm1);
            register_module("attn", _attention);
            register_module("ln_2", _norm2);
            register_module("mlp", _mlp);
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            Tensor hidden = input + _attention.call(_norm1.call(input));
            return (hidden + _mlp.call(_norm2.call(hidden))).MoveToOuterDisposeScope();
        }
    }

    private sealed class Gpt2Attention : nn.Module<Tensor, Tensor>, ILinearOwner, IPrunableChannels, IAttentionCapture
    {
        private nn.Module<Tensor, Tensor> _qkv, _projection;
        private readonly int _headDimension;
        private int _heads;

        public Gpt2Attention(Gpt2Config config)
            : base(nameof(Gpt2Attention))
        {
            (_heads, _headDimension) = (config.Heads, config.Width / config.Heads);
            _qkv = nn.Linear(config.Width, 3 * config.Width, hasBias: true);
            _projection = nn.Linear(config.Width, config.Width, hasBias: true);
            register_module("c_attn", _qkv);
            register_module("c_proj", _projection);
        }

        public string Kind => "attention";

        public List<Tensor>? Capture { get; set; }

        public int ChannelCount => _heads;

        public IReadOnlyList<ChannelSlice> Slices
        {
            get
            {
                // c_attn holds q, k and v one after another: a head spans one slice of each.
                int inner = _heads * _headDimension;
                Linear qkv = Dense(_qkv);
                return [new(qkv, ChannelSide.Rows, 0, _headDimension), new(qkv, ChannelSide.Rows, inner, _headDimension),
                        new(qkv, ChannelSide.Rows, 2 * inner, _headDimension), new(Dense(_projection), ChannelSide.Columns, 0, _headDimension)];
            }
        }

        public void Keep(int[] channels)
        {
            IReadOnlyList<ChannelSlice> slices = Slices;
            _qkv = ModuleSlots.Swap(this, "c_attn", _qkv, ChannelShrinking.ShrinkLayer(slices.Take(3), channels));
            _projection = ModuleSlots.Swap(this, "c_proj", _projection, ChannelShrinking.ShrinkLayer([slices[3]], channels));
            _heads = channels.Length;
        }

        void ILinearOwner.Replace(string child, nn.Module<Tensor, Tensor> replacement)
        {
            switch (child)
            {
                case "c_attn": _qkv = ModuleSlots.Swap(this, child, _qkv, replacement); break;
                case "c_proj": _projection = ModuleSlots.Swap(this, child, _projection, replacement); break;
                default: throw ModuleSlots.NoSuchChild(this, child);
            }
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            long batch = input.shape[0], time = input.shape[1], headDimension = _headDimension, inner = _heads * _headDimension;
            Tensor[] qkv = _qkv.call(input).split(inner, -1);
            Tensor q = qkv[0].view(batch, time, _heads, headDimension).transpose(1, 2);
            Tensor k = qkv[1].view(batch, time, _heads, headDimension).transpose(1, 2);
            Tensor v = qkv[2].view(batch, time, _heads, headDimension).transpose(1, 2);
            Tensor scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(headDimension);
            Tensor probabilities = LlamaForCausalLM.CausalSoftmax(scores);
            Capture?.Add(probabilities.DetachFromDisposeScope());
            Tensor output = probabilities.matmul(v).transpose(1, 2).contiguous().view(batch, time, inner);
            return _projection.call(output).MoveToOuterDisposeScope();
        }
    }

    private sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>, ILinearOwner, IPrunableChannels
    {
        private nn.Module<Tensor, Tensor> _fc, _projection;

        public Gpt2Mlp(Gpt2Config config)
            : base(nameof(Gpt2Mlp))
        {
            _fc = nn.Linear(config.Width, config.InnerWidth, hasBias: true);
            _projection = nn.Linear(config.InnerWidth, config.Width, hasBias: true);
            register_module("c_fc", _fc);
            register_module("c_proj", _projection);
        }

        public string Kind => "mlp";

        public int ChannelCount => (int)Dense(_fc).out_features;

        public IReadOnlyList<ChannelSlice> Slices => [new(Dense(_fc), ChannelSide.Rows, 0, 1), new(Dense(_projection), ChannelSide.Columns, 0, 1)];

        public void Keep(int[] channels)
        {
            IReadOnlyList<ChannelSlice> slices = Slices;
            _fc = ModuleSlots.Swap(this, "c_fc", _fc, ChannelShrinking.ShrinkLayer([slices[0]], channels));
            _projection = ModuleSlots.Swap(this, "c_proj", _projection, ChannelShrinking.ShrinkLayer([slices[1]], channels));
        }

        void ILinearOwner.Replace(string child, nn.Module<Tensor, Tensor> replacement)
        {
            switch (child)
            {
                case "c_fc": _fc = ModuleSlots.Swap(this, child, _fc, replacement); break;
                case "c_proj": _projection = ModuleSlots.Swap(this, child, _projection, replacement); break;
                default: throw ModuleSlots.NoSuchChild(this, child);
            }
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            Tensor x = _fc.call(input);
            // gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
            Tensor gelu = 0.5 * x * (1.0 + torch.tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3))));
            return _projection.call(gelu).MoveToOuterDisposeScope();
        }
    }

    private static Linear Dense(nn.Module<Tensor, Tensor> module) =>
        module as Linear ?? throw new InvalidOperationException("Structured pruning needs dense linear layers: prune structure before packing or quantizing.");
}
