// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;
using System.Text.Json.Nodes;

namespace Compression.Quantization.Gguf;

/// <summary>A Llama config.json's hyperparameters, and their <c>llama.*</c> GGUF keys.</summary>
internal sealed record LlamaHyperparameters(int VocabSize, int ContextLength, int EmbeddingLength, int BlockCount,
    int FeedForwardLength, int HeadCount, int HeadCountKv, int HeadSize, bool ExplicitHeadSize, float RmsEpsilon,
    float RopeTheta, bool TiedEmbeddings)
{
    public static LlamaHyperparameters From(JsonObject config, string path)
    {
        string? modelType = Text(config, "model_type", path);
        if (modelType != "llama")
        {
            throw new NotSupportedException($"{path}: model_type '{modelType}' is not 'llama'; only Llama checkpoints are exported to GGUF.");
        }

        if (Text(config, "hidden_act", path) is string act && act != "silu")
        {
            throw new NotSupportedException($"{path}: hidden_act '{act}' is not silu, which llama.cpp's Llama assumes.");
        }

        if (Flag(config, "attention_bias", path) || Flag(config, "mlp_bias", path))
        {
            throw new NotSupportedException($"{path}: projection biases are not exported (llama.cpp's converter maps none for Llama).");
        }

        // Rope scaling (linear, dynamic, llama3, yarn) needs more keys or a rope_freqs tensor; plain rope only.
        if (config["rope_scaling"] is JsonObject scaling && !IsDefaultRope(scaling))
        {
            throw new NotSupportedException($"{path}: rope_scaling {scaling.ToJsonString()} is not exported; only the default rotary embedding.");
        }

        float theta = 10000f;
        if (config["rope_parameters"] is JsonObject rope)
        {
            if (!IsDefaultRope(rope))
            {
                throw new NotSupportedException($"{path}: rope_parameters {rope.ToJsonString()} is not exported; only the default rotary embedding.");
            }

            theta = (float)(Number(rope, "rope_theta", path) ?? theta);
        }

        theta = (float)(Number(config, "rope_theta", path) ?? theta);
        int hidden = Integer(config, "hidden_size", path), heads = Integer(config, "num_attention_heads", path);
        int? headDim = config["head_dim"] is null ? null : Integer(config, "head_dim", path);
        if (headDim is null && hidden % heads != 0)
        {
            throw new InvalidDataException($"{path}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}.");
        }

        int kvHeads = config["num_key_value_heads"] is null ? heads : Integer(config, "num_key_value_heads", path);
        if (heads % kvHeads != 0)
        {
            throw new InvalidDataException($"{path}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}.");
        }

        return new LlamaHyperparameters(
            Integer(config, "vocab_size", path),
            config["max_position_embeddings"] is null ? 2048 : Integer(config, "max_position_embeddings", path),
            hidden,
            Integer(config, "num_hidden_layers", path),
            Integer(config, "intermediate_size", path),
            heads,
            kvHeads,
            headDim ?? hidden / heads,
            headDim is not null,
            (float)(Number(config, "rms_norm_eps", path) ?? 1e-6),
            theta,
            config["tie_word_embeddings"] is null || Flag(config, "tie_word_embeddings", path));
    }

    public void WriteTo(GgufWriter writer)
    {
        writer.SetMetadata("llama.vocab_size", GgufValue.UInt32((uint)VocabSize));
        writer.SetMetadata("llama.context_length", GgufValue.UInt32((uint)ContextLength));
        writer.SetMetadata("llama.embedding_length", GgufValue.UInt32((uint)EmbeddingLength));
        writer.SetMetadata("llama.block_count", GgufValue.UInt32((uint)BlockCount));
        writer.SetMetadata("llama.feed_forward_length", GgufValue.UInt32((uint)FeedForwardLength));
        writer.SetMetadata("llama.attention.head_count", GgufValue.UInt32((uint)HeadCount));
        writer.SetMetadata("llama.attention.head_count_kv", GgufValue.UInt32((uint)HeadCountKv));
        writer.SetMetadata("llama.attention.layer_norm_rms_epsilon", GgufValue.Float32(RmsEpsilon));
        writer.SetMetadata("llama.rope.freq_base", GgufValue.Float32(RopeTheta));
        writer.SetMetadata("llama.rope.dimension_count", GgufValue.UInt32((uint)HeadSize));
        if (ExplicitHeadSize)
        {
            writer.SetMetadata("llama.attention.key_length", GgufValue.UInt32((uint)HeadSize));
            writer.SetMetadata("llama.attention.value_length", GgufValue.UInt32((uint)HeadSize));
        }
    }

    private static bool IsDefaultRope(JsonObject rope) =>
        rope["rope_type"] is null || (rope["rope_type"] is JsonValue v && v.TryGetValue(out string? t) && t == "default");

    private static string? Text(JsonObject config, string key, string path) => config[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw new InvalidDataException($"{path}: '{key}' is not a string."),
    };

    private static bool Flag(JsonObject config, string key, string path) => config[key] switch
    {
        null => false,
        JsonValue v when v.TryGetValue(out bool b) => b,
        _ => throw new InvalidDataException($"{path}: '{key}' is not a boolean."),
    };

    private static double? Number(JsonObject config, string key, string path) => config[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out double d) && double.IsFinite(d) && d > 0 => d,
        _ => throw new InvalidDataException($"{path}: '{key}' is not a positive number."),
    };

    private static int Integer(JsonObject config, string key, string path) => config[key] switch
    {
        null => throw new InvalidDataException($"{path}: '{key}' is missing."),
        JsonValue v when v.TryGetValue(out int i) && i > 0 => i,
        _ => throw new InvalidDataException($"{path}: '{key}' is not a positive integer."),
    };
}
