// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.IO;
using System.Text.Json;

namespace Compression.TorchSharp.Models;

/// <summary>The fields of a Hugging Face <c>GPT2LMHeadModel</c> <c>config.json</c> the forward pass needs.</summary>
/// <param name="Width"><c>n_embd</c>.</param>
/// <param name="Layers"><c>n_layer</c>.</param>
/// <param name="Heads"><c>n_head</c>.</param>
/// <param name="InnerWidth"><c>n_inner</c> (4·<c>n_embd</c> when null).</param>
/// <param name="VocabularySize">Tokens.</param>
/// <param name="ContextLength"><c>n_positions</c> (learned positions).</param>
/// <param name="LayerNormEpsilon">ε of LayerNorm.</param>
public sealed record Gpt2Config(int Width, int Layers, int Heads, int InnerWidth, int VocabularySize, int ContextLength, double LayerNormEpsilon)
{
    /// <summary>Reads and checks a config.json document.</summary>
    /// <exception cref="InvalidDataException">A required field is missing or out of range, or the config asks for
    /// something this implementation does not compute.</exception>
    public static Gpt2Config Parse(JsonElement root, string source)
    {
        var json = new ConfigReader(root, source);
        int width = json.Int("n_embd");
        var config = new Gpt2Config(width, json.Int("n_layer"), json.Int("n_head"), json.Int("n_inner", 4 * width), json.Int("vocab_size"),
            json.Int("n_positions"), json.Double("layer_norm_epsilon", 1e-5));
        json.Require(json.String("activation_function", "gelu_new") is "gelu_new" or "gelu_pytorch_tanh",
            $"activation_function '{json.String("activation_function", "")}' is not supported (gelu_new)");
        json.Require(json.Bool("tie_word_embeddings", true), "an untied GPT-2 head is not supported");
        json.Require(json.Bool("scale_attn_weights", true) && !json.Bool("scale_attn_by_inverse_layer_idx", false),
            "only the standard 1/√d attention scaling is supported");
        json.Require(config.Width > 0 && config.Layers > 0 && config.Heads > 0 && config.Width % config.Heads == 0,
            $"n_embd {config.Width} must be a positive multiple of n_head {config.Heads}");
        json.Require(config.VocabularySize > 0 && config.ContextLength > 0 && config.InnerWidth > 0, "sizes must be positive");
        return config;
    }
}
