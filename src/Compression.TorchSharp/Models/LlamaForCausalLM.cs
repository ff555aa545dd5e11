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
/// The Hugging Face <c>LlamaForCausalLM</c> forward pass in float32: token embedding, decoder layers of RMSNorm →
/// grouped-query attention with RoPE → residual, RMSNorm → SwiGLU MLP → residual, a final RMSNorm and the head
/// (tied to the embedding when the config says so). Parameter names are the checkpoint's.
/// </summary>
public sealed class LlamaForCausalLM : CausalLanguageModel, ILinearOwner
{
    private readonly LlamaModel _model;
    private nn.Module<Tensor, Tensor>? _head;

    /// <summary>Creates the model with freshly initialised weights (load a checkpoint with <see cref="HuggingFaceModels"/>).</summary>
    public LlamaForCausalLM(LlamaConfig config)
        : base(nameof(LlamaForCausalLM))
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        _model = new LlamaModel(config);
        register_module("model", _model);
        if (!config.TieWordEmbeddings)
        {
            _head = nn.Linear(config.HiddenSize, config.VocabularySize, hasBias: false);
            register_module("lm_head", _head);
        }
    }

    /// <summary>The configuration.</summary>
    public LlamaConfig Config { get; }

    /// <inheritdoc/>
    public override int VocabularySize => Config.VocabularySize;

    /// <inheritdoc/>
    public override int ContextLength => Config.ContextLength;

    /// <inheritdoc/>
    public override string Architecture => "LlamaForCausalLM";

    /// <inheritdoc/>
    public override int HiddenSize => Config.HiddenSize;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor hidden = _model.call(input);
        Tensor logits = _head is null ? hidden.matmul(_model.EmbedTokens.weight!.t()) : _head.call(hidden);
        return logits.MoveToOuterDisposeScope();
    }

    internal override Tensor Embed(Tensor input) => _model.EmbedTokens.call(input);

    internal override Tensor Head(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        Tensor normed = _model.Norm.call(hidden);
        Tensor logits = _head is null ? normed.matmul(_model.EmbedTokens.weight!.t()) : _head.call(normed);
        return logits.MoveToOuterDisposeScope();
    }

    void ILinearOwner.Replace(string child, nn.Module<Tensor, Tensor> replacement) =>
        _head = child == "lm_head" && _head is not null ? ModuleSlots.Swap(this, child, _head, replacement) : throw ModuleSlots.NoSuchChild(this, child);

    internal override IReadOnlyList<(string Prefix, nn.Module<Tensor, Tensor> Block)> Blocks =>
        _model.Layers.Select((layer, i) => ($"model.layers.{i}", (nn.Module<Tensor, Tensor>)layer)).ToArray();

    internal override IEnumerable<(string Name, bool Transposed)> CheckpointNames(string parameterName)
    {
        yield return (parameterName, false);
        if (Config.TieWordEmbeddings && parameterName == "model.embed_tokens.weight")
        {
            // Tied checkpoints may store only the head (TinyStories-656K maps the embedding to it in __metadata__).
            yield return ("lm_head.weight", false);
        }
    }

    private sealed class LlamaModel : nn.Module<Tensor, Tensor>
    {
        private readonly ModuleList<LlamaDecoderLayer> _layers;
        private readonly RmsNorm _norm;

        public LlamaModel(LlamaConfig config)
            : base(nameof(LlamaModel))
        {
            EmbedTokens = nn.Embedding(config.VocabularySize, config.HiddenSize);
            _layers = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new LlamaDecoderLayer(config)).ToArray());
            _norm = new RmsNorm(config.HiddenSize, config.RmsNormEpsilon);
            register_module("embed_tokens", EmbedTokens);
            register_module("layers", _layers);
            register_module("norm", _norm);
        }

        public Embedding EmbedTokens { get; }

        public RmsNorm Norm => _norm;

        public IEnumerable<LlamaDecoderLayer> Layers => _layers;

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            Tensor hidden = EmbedTokens.call(input);
            foreach (LlamaDecoderLayer layer in _layers)
            {
                hidden = layer.call(hidden);
            }

            return _norm.call(hidden).MoveToOuterDisposeScope();
        }
    }

    private sealed class LlamaDecoderLayer : nn.Module<Tensor, Tensor>
    {
        private readonly RmsNorm _inputNorm, _postAttentionNorm;
        private readonly LlamaAttention _attention;
        private readonly LlamaMlp _mlp;

        public LlamaDecoderLayer(LlamaConfig config)
            : base(nameof(LlamaDecoderLayer))
        {
            _inputNorm = new RmsNorm(config.HiddenSize, config.RmsNormEpsilon);
            _attention = new LlamaAttention(config);
            _postAttentionNorm = new RmsNorm(config.HiddenSize, config.RmsNormEpsilon);
            _mlp = new LlamaMlp(config);
            register_module("input_layernorm", _inputNorm);
            register_module("self_attn", _attention);
            register_module("post_attention_layernorm", _postAttentionNorm);
            register_module("mlp", _mlp);
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            Tensor hidden = input + _attention.call(_inputNorm.call(input));
            return (hidden + _mlp.call(_postAttentionNorm.call(hidden))).MoveToOuterDisposeScope();
        }
    }

    private sealed class LlamaAttention : nn.Module<Tensor, Tensor>, ILinearOwner, IPrunableChannels, IAttentionCapture
    {
        private nn.Module<Tensor, Tensor> _q, _k, _v, _o;
        private readonly int _headDimension;
        private int _heads, _kvHeads;
        private readonly double _theta;

        public LlamaAttention(LlamaConfig config)
            : base(nameof(LlamaAttention))
        {
            (_heads, _kvHeads, _headDimension, _theta) = (config.Heads, config.KeyValueHeads, config.HeadDimension, config.RopeTheta);
            _q = nn.Linear(config.HiddenSize, _heads * _headDimension, hasBias: false);
            _k = nn.Linear(config.HiddenSize, _kvHeads * _headDimension, hasBias: false);
            _v = nn.Linear(config.HiddenSize, _kvHeads * _headDimension, hasBias: false);
            _o = nn.Linear(_heads * _headDimension, config.HiddenSize, hasBias: false);
            register_module("q_proj", _q);
            register_module("k_proj", _k);
            register_module("v_proj", _v);
            register_module("o_proj", _o);
        }

        public string Kind => "attention";

        public List<Tensor>? Capture { get; set; }

        // A channel is one key/value head with the query heads that share it (grouped-query attention).
        public int ChannelCount => _kvHeads;

        public IReadOnlyList<ChannelSlice> Slices
        {
            get
            {
                int group = _heads / _kvHeads * _headDimension;
                return [new(Dense(_q), ChannelSide.Rows, 0, group), new(Dense(_k), ChannelSide.Rows, 0, _headDimension),
                        new(Dense(_v), ChannelSide.Rows, 0, _headDimension), new(Dense(_o), ChannelSide.Columns, 0, group)];
            }
        }

        public void Keep(int[] channels)
        {
            IReadOnlyList<ChannelSlice> slices = Slices;
            int queriesPerGroup = _heads / _kvHeads;
            _q = ModuleSlots.Swap(this, "q_proj", _q, ChannelShrinking.ShrinkLayer([slices[0]], channels));
            _k = ModuleSlots.Swap(this, "k_proj", _k, ChannelShrinking.ShrinkLayer([slices[1]], channels));
            _v = ModuleSlots.Swap(this, "v_proj", _v, ChannelShrinking.ShrinkLayer([slices[2]], channels));
            _o = ModuleSlots.Swap(this, "o_proj", _o, ChannelShrinking.ShrinkLayer([slices[3]], channels));
            (_heads, _kvHeads) = (channels.Length * queriesPerGroup, channels.Length);
        }

        void ILinearOwner.Replace(string child, nn.Module<Tensor, Tensor> replacement)
        {
            switch (child)
            {
                case "q_proj": _q = ModuleSlots.Swap(this, child, _q, replacement); break;
                case "k_proj": _k = ModuleSlots.Swap(this, child, _k, replacement); break;
                case "v_proj": _v = ModuleSlots.Swap(this, child, _v, replacement); break;
                case "o_proj": _o = ModuleSlots.Swap(this, child, _o, replacement); break;
                default: throw ModuleSlots.NoSuchChild(this, child);
            }
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            long batch = input.shape[0], time = input.shape[1];
            Tensor q = _q.call(input).view(batch, time, _heads, _headDimension).transpose(1, 2);
            Tensor k = _k.call(input).view(batch, time, _kvHeads, _headDimension).transpose(1, 2);
            Tensor v = _v.call(input).view(batch, time, _kvHeads, _headDimension).transpose(1, 2);
            (Tensor cos, Tensor sin) = Rotary(time, input.device);
            (cos, sin) = (cos.to(q.dtype), sin.to(q.dtype));
            q = q * cos + RotateHalf(q) * sin;
            k = k * cos + RotateHalf(k) * sin;
            if (_kvHeads < _heads)
            {
                // Each key/value head serves heads/kvHeads consecutive query heads (HF's repeat_kv).
                k = k.repeat_interleave(_heads / _kvHeads, 1);
                v = v.repeat_interleave(_heads / _kvHeads, 1);
            }

            Tensor scores = q.matmul(k.transpose(-2, -1)) * (1.0 / Math.Sqrt(_headDimension));
            Tensor probabilities = CausalSoftmax(scores);
            Capture?.Add(probabilities.DetachFromDisposeScope());
            Tensor output = probabilities.matmul(v).transpose(1, 2).contiguous().view(batch, time, _heads * _headDimension);
            return _o.call(output).MoveToOuterDisposeScope();
        }

        /// <summary>cos and sin of position·θ^(−2i/d), each frequency used for both halves (HF's default RoPE, float32).</summary>
        private (Tensor Cos, Tensor Sin) Rotary(long time, Device device)
        {
            Tensor exponents = torch.arange(0, _headDimension, 2, ScalarType.Int64, device).to(ScalarType.Float32) / _headDimension;
            Tensor inverseFrequency = 1.0f / torch.pow(torch.tensor((float)_theta, device: device), exponents);
            Tensor positions = torch.arange(0, time, 1, ScalarType.Int64, device).to(ScalarType.Float32);
            Tensor angles = torch.outer(positions, inverseFrequency);
            Tensor both = torch.cat([angles, angles], -1);
            return (both.cos(), both.sin());
        }

        private static Tensor RotateHalf(Tensor x)
        {
            long half = x.shape[^1] / 2;
            return torch.cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        }
    }

    private sealed class LlamaMlp : nn.Module<Tensor, Tensor>, ILinearOwner, IPrunableChannels
    {
        private nn.Module<Tensor, Tensor> _gate, _up, _down;

        public LlamaMlp(LlamaConfig config)
            : base(nameof(LlamaMlp))
        {
            _gate = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
            _up = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
            _down = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: false);
            register_module("gate_proj", _gate);
            register_module("up_proj", _up);
            register_module("down_proj", _down);
        }

        public string Kind => "mlp";

        public int ChannelCount => (int)Dense(_gate).out_features;

        public IReadOnlyList<ChannelSlice> Slices =>
            [new(Dense(_gate), ChannelSide.Rows, 0, 1), new(Dense(_up), ChannelSide.Rows, 0, 1), new(Dense(_down), ChannelSide.Columns, 0, 1)];

        public void Keep(int[] channels)
        {
            IReadOnlyList<ChannelSlice> slices = Slices;
            _gate = ModuleSlots.Swap(this, "gate_proj", _gate, ChannelShrinking.ShrinkLayer([slices[0]], channels));
            _up = ModuleSlots.Swap(this, "up_proj", _up, ChannelShrinking.ShrinkLayer([slices[1]], channels));
            _down = ModuleSlots.Swap(this, "down_proj", _down, ChannelShrinking.ShrinkLayer([slices[2]], channels));
        }

        void ILinearOwner.Replace(string child, nn.Module<Tensor, Tensor> replacement)
        {
            switch (child)
            {
                case "gate_proj": _gate = ModuleSlots.Swap(this, child, _gate, replacement); break;
                case "up_proj": _up = ModuleSlots.Swap(this, child, _up, replacement); break;
                case "down_proj": _down = ModuleSlots.Swap(this, child, _down, replacement); break;
                default: throw ModuleSlots.NoSuchChild(this, child);
            }
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            return _down.call(nn.functional.silu(_gate.call(input)) * _up.call(input)).MoveToOuterDisposeScope();
        }
    }

    private static Linear Dense(nn.Module<Tensor, Tensor> module) =>
        module as Linear ?? throw new InvalidOperationException("Structured pruning needs dense linear layers: prune structure before packing or quantizing.");

    /// <summary>0 on and below the diagonal, −∞ above: position t attends to positions ≤ t.</summary>
    internal static Tensor CausalMask(long time, Device device, ScalarType dtype = ScalarType.Float32) =>
        torch.triu(torch.full(time, time, float.NegativeInfinity, dtype: dtype, device: device), 1);

    /// <summary>
    /// Softmax over the last dimension of [batch, heads, time, time] scores with the causal mask added. The mask takes
    /// the scores' dtype (a float32 mask would promote bfloat16 scores, and libtorch aborts the process on the
    /// mixed-dtype product that follows); bfloat16/float16 scores are normalised in float32 and cast back, as Hugging
    /// Face does.
    /// </summary>
    internal static Tensor CausalSoftmax(Tensor scores)
    {
        Tensor masked = scores + CausalMask(scores.shape[^1], scores.device, scores.dtype);
        return scores.dtype is ScalarType.BFloat16 or ScalarType.Float16
            ? masked.softmax(-1, ScalarType.Float32).to(scores.dtype)
            : masked.softmax(-1);
    }
}
