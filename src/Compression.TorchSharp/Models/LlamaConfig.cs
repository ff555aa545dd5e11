// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;
using System.Text.Json;

namespace Compression.TorchSharp.Models;

/// <summary>The fields of a Hugging Face <c>LlamaForCausalLM</c> <c>config.json</c> the forward pass needs.</summary>
/// <param name="HiddenSize">Width of the residual stream.</param>
/// <param name="IntermediateSize">Width of the SwiGLU MLP.</param>
/// <param name="Layers">Decoder layers.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KeyValueHeads">Key/value heads (grouped-query attention when fewer than <paramref name="Heads"/>).</param>
/// <param name="HeadDimension">Width of a head.</param>
/// <param name="VocabularySize">Tokens.</param>
/// <param name="ContextLength"><c>max_position_embeddings</c>.</param>
/// <param name="RmsNormEpsilon">ε of RMSNorm.</param>
/// <param name="RopeTheta">The RoPE base.</param>
/// <param name="TieWordEmbeddings">Whether the head shares the embedding matrix.</param>
public sealed record LlamaConfig(
    int HiddenSize,
    int IntermediateSize,
    int Layers,
    int Heads,
    int KeyValueHeads,
    int HeadDimension,
    int VocabularySize,
    int ContextLength,
    double RmsNormEpsilon,
    double RopeTheta,
    bool TieWordEmbeddings)
{
    /// <summary>Reads and checks a config.json document.</summary>
    /// <exception cref="InvalidDataException">A required field is missing or out of range, or the config asks for
    /// something this implementation does not compute (biases, RoPE scaling, an activation other than SiLU).</exception>
    public static LlamaConfig Parse(JsonElement root, string source)
    {
        var json = new ConfigReader(root, source);
        int hidden = json.Int("hidden_size");
        int heads = json.Int("num_attention_heads");
        int kvHeads = json.Int("num_key_value_heads", heads);
        int headDimension = json.Int("head_dim", heads > 0 ? hidden / heads : 0);
        json.Require(json.Bool("attention_bias", false) == false, "attention_bias = true is not supported");
        json.Require(json.Bool("mlp_bias", false) == false, "mlp_bias = true is not supported");
        json.Require(json.String("hidden_act", "silu") == "silu", $"hidden_act '{json.String("hidden_act", "")}' is not supported (silu only)");
        json.Require(json.IsNullOrAbsent("rope_scaling"), "rope_scaling is not supported");
        double theta = json.Double("rope_theta", double.NaN);
        if (double.IsNaN(theta) && root.TryGetProperty("rope_parameters", out JsonElement rope) && rope.ValueKind == JsonValueKind.Object)
        {
            var ropeJson = new ConfigReader(rope, source + " rope_parameters");
            ropeJson.Require(ropeJson.String("rope_type", "default") == "default", "only the default RoPE is supported");
            theta = ropeJson.Double("rope_theta", 10000);
        }

        var config = new LlamaConfig(hidden, json.Int("intermediate_size"), json.Int("num_hidden_layers"), heads, kvHeads, headDimension,
            json.Int("vocab_size"), json.Int("max_position_embeddings"), json.Double("rms_norm_eps", 1e-6), double.IsNaN(theta) ? 10000 : theta,
            json.Bool("tie_word_embeddings", false));
        json.Require(config.HiddenSize > 0 && config.IntermediateSize > 0 && config.Layers > 0 && config.VocabularySize > 0 && config.ContextLength > 0,
            "sizes must be positive");
        json.Require(heads > 0 && kvHeads > 0 && heads % kvHeads == 0, $"num_attention_heads {heads} must be a positive multiple of num_key_value_heads {kvHeads}");
        json.Require(headDimension > 0 && headDimension % 2 == 0, $"head_dim {headDimension} must be positive and even (RoPE rotates pairs)");
        return config;
    }
}
