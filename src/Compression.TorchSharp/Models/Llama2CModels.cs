// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers.Binary;
using System.IO;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Models;

/// <summary>
/// Reads Karpathy's llama2.c checkpoint layout (<c>.bin</c>: a header of seven int32 fields, then float32 arrays) into
/// a <see cref="LlamaForCausalLM"/>.
/// </summary>
/// <remarks>
/// Layout: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative: an unshared classifier follows),
/// seq_len; then the token embedding [vocab, dim]; per-layer arrays stacked over layers: attention RMSNorm [dim],
/// wq [dim, dim], wk [kv_dim, dim], wv [kv_dim, dim], wo [dim, dim], FFN RMSNorm [dim], w1 (gate) [hidden, dim],
/// w2 (down) [dim, hidden], w3 (up) [hidden, dim] (all [out, in]); the final RMSNorm [dim]; the RoPE tables
/// (seq_len × head_dim/2, twice; skipped: the model computes them); the classifier [vocab, dim] when unshared.
/// llama2.c rotates interleaved pairs (x₂ᵢ, x₂ᵢ₊₁) where Hugging Face rotates halves, so the rows of wq and wk are
/// permuted head by head on load (the permutation of Hugging Face's conversion script), which makes both compute the
/// same attention. RMSNorm ε is llama2.c's 1e-5 and θ = 10000.
/// </remarks>
public static class Llama2CModels
{
    private const int HeaderBytes = 7 * sizeof(int);

    /// <summary>Loads a llama2.c <c>.bin</c> file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The header is invalid or the file's length does not match it.</exception>
    public static LlamaForCausalLM Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < HeaderBytes)
        {
            throw new InvalidDataException($"{path}: {bytes.Length} bytes cannot hold the 28-byte llama2.c header.");
        }

        int Field(int i) => BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4 * i));
        int dim = Field(0), hidden = Field(1), layers = Field(2), heads = Field(3), kvHeads = Field(4), vocab = Field(5), context = Field(6);
        bool shared = vocab > 0;
        vocab = Math.Abs(vocab);
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab == 0 || context <= 0 || dim % heads != 0 ||
            heads % kvHeads != 0 || dim / heads % 2 != 0)
        {
            throw new InvalidDataException(
                $"{path}: invalid llama2.c header (dim {dim}, hidden {hidden}, layers {layers}, heads {heads}, kv heads {kvHeads}, vocab {vocab}, seq {context}).");
        }

        int headDimension = dim / heads, kvDimension = kvHeads * headDimension;
        long floats = (long)vocab * dim + layers * (2L * dim + 2L * dim * dim + 2L * kvDimension * dim + 3L * hidden * dim) + dim +
                      (long)context * headDimension + (shared ? 0 : (long)vocab * dim);
        long expected = HeaderBytes + 4 * floats;
        if (bytes.Length != expected)
        {
            throw new InvalidDataException($"{path}: the header describes {expected} bytes but the file has {bytes.Length} (truncated or not llama2.c).");
        }

        var config = new LlamaConfig(dim, hidden, layers, heads, kvHeads, headDimension, vocab, context, 1e-5, 10000, shared);
        var model = new LlamaForCausalLM(config);
        try
        {
            float[] values = MemoryMarshal.Cast<byte, float>(bytes.AsSpan(HeaderBytes)).ToArray();
            long offset = 0;
            ReadOnlySpan<float> Take(long count)
            {
                ReadOnlySpan<float> slice = values.AsSpan((int)offset, (int)count);
                offset += count;
                return slice;
            }

            using var noGrad = torch.no_grad();
            var parameters = new System.Collections.Generic.Dictionary<string, global::TorchSharp.Modules.Parameter>();
            foreach ((string name, global::TorchSharp.Modules.Parameter parameter) in model.named_parameters())
            {
                parameters[name] = parameter;
            }

            void Set(string name, ReadOnlySpan<float> data)
            {
                global::TorchSharp.Modules.Parameter parameter = parameters[name];
                using Tensor source = torch.tensor(data.ToArray(), parameter.shape);
                parameter.copy_(source);
            }

            void PerLayer(string suffix, long perLayer, Func<float[], float[]>? transform = null)
            {
                for (int l = 0; l < layers; l++)
                {
                    float[] data = Take(perLayer).ToArray();
                    Set($"model.layers.{l}.{suffix}", transform is null ? data : transform(data));
                }
            }

            Set("model.embed_tokens.weight", Take((long)vocab * dim));
            PerLayer("input_layernorm.weight", dim);
            PerLayer("self_attn.q_proj.weight", (long)dim * dim, w => InterleavedToHalves(w, heads, headDimension, dim));
            PerLayer("self_attn.k_proj.weight", (long)kvDimension * dim, w => InterleavedToHalves(w, kvHeads, headDimension, dim));
            PerLayer("self_attn.v_proj.weight", (long)kvDimension * dim);
            PerLayer("self_attn.o_proj.weight", (long)dim * dim);
            PerLayer("post_attention_layernorm.weight", dim);
            PerLayer("mlp.gate_proj.weight", (long)hidden * dim);
            PerLayer("mlp.down_proj.weight", (long)dim * hidden);
            PerLayer("mlp.up_proj.weight", (long)hidden * dim);
            Set("model.norm.weight", Take(dim));
            offset += (long)context * headDimension;                 // cos and sin tables: recomputed by the model
            if (!shared)
            {
                Set("lm_head.weight", Take((long)vocab * dim));
            }

            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reorders the rows of a [heads·d, in] projection so that each head's interleaved pairs (rows 2i, 2i + 1)
    /// become halves (rows i and i + d/2): row h·d + i ← h·d + 2i and h·d + d/2 + i ← h·d + 2i + 1.
    /// </summary>
    internal static float[] InterleavedToHalves(float[] weight, int heads, int headDimension, int inputs)
    {
        var result = new float[weight.Length];
        int half = headDimension / 2;
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < half; i++)
            {
                weight.AsSpan((h * headDimension + 2 * i) * inputs, inputs).CopyTo(result.AsSpan((h * headDimension + i) * inputs, inputs));
                weight.AsSpan((h * headDimension + 2 * i + 1) * inputs, inputs).CopyTo(result.AsSpan((h * headDimension + half + i) * inputs, inputs));
            }
        }

        return result;
    }
}
