// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Compression.Quantization.Gguf;

/// <summary>
/// A SentencePiece-style BPE vocabulary (tokens with the ▁ word marker, byte fallback) read from a Hugging Face
/// tokenizer.json, as llama.cpp's <c>llama</c> tokenizer metadata: tokens in id order, scores, token types and the
/// special token ids.
/// </summary>
/// <remarks>
/// llama.cpp's SentencePiece tokenizer merges, at each step, the adjacent pair whose concatenation is the vocabulary
/// token of highest score. A tokenizer.json has no scores but a ranked merge list, so a token made by merge r scores
/// −(r + 1) and every other token 0: the earliest merge wins, as in the Hugging Face tokenizer. (llama.cpp's converter
/// writes a placeholder −1000 for every token of such a vocabulary, which loses the merge order.)
/// </remarks>
internal sealed record GgufLlamaVocabulary(string[] Tokens, float[] Scores, int[] Types, int? Bos, int? Eos, int? Unknown,
    int? Padding, bool? AddBos, bool? AddEos, bool AddSpacePrefix)
{
    // llama.cpp's llama_token_type values.
    private const int Normal = 1, UnknownType = 2, Control = 3, UserDefined = 4, Unused = 5, ByteType = 6;

    private static readonly Regex ByteToken = new("^<0x[0-9A-Fa-f]{2}>$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    public static GgufLlamaVocabulary From(JsonObject tokenizer, string path, JsonObject? tokenizerConfig, JsonObject config, int vocabSize)
    {
        if (tokenizer["model"] is not JsonObject model || Str(model["type"]) != "BPE" || model["vocab"] is not JsonObject vocab)
        {
            throw new NotSupportedException($"{path}: not a BPE tokenizer with a vocab; only SentencePiece-style BPE vocabularies are exported.");
        }

        bool byteFallback = model["byte_fallback"] is JsonValue bf && bf.TryGetValue(out bool b) && b;
        bool metaspace = ContainsType(tokenizer["pre_tokenizer"], "Metaspace") || ContainsType(tokenizer["decoder"], "Metaspace");
        bool prepend = ContainsPrepend(tokenizer["normalizer"]);
        if (!byteFallback && !metaspace && !prepend)
        {
            throw new NotSupportedException(
                $"{path}: a BPE without the ▁ word marker or byte fallback (a GPT-2 style byte-level BPE) is not exported; set IncludeTokenizer = false.");
        }

        var tokens = new string?[vocabSize];
        foreach ((string text, JsonNode? idNode) in vocab)
        {
            int id = Id(idNode, path, text);
            if (id >= vocabSize)
            {
                throw new InvalidDataException($"{path}: token '{text}' has id {id}, beyond the model's vocab_size {vocabSize}.");
            }

            tokens[id] = tokens[id] is null ? text : throw new InvalidDataException($"{path}: two tokens have id {id}.");
        }

        var types = new int[vocabSize];
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        if (tokenizer["added_tokens"] is JsonArray added)
        {
            foreach (JsonNode? node in added)
            {
                if (node is not JsonObject token || Str(token["content"]) is not string content)
                {
                    throw new InvalidDataException($"{path}: an added token has no content.");
                }

                int id = Id(token["id"], path, content);
                if (id >= vocabSize || (tokens[id] is string existing && existing != content))
                {
                    throw new InvalidDataException($"{path}: added token '{content}' (id {id}) conflicts with the vocabulary.");
                }

                tokens[id] = content;
                bool isSpecial = token["special"] is JsonValue s && s.TryGetValue(out bool sp) && sp;
                types[id] = isSpecial ? Control : UserDefined;
                special[content] = id;
            }
        }

        var scores = new float[vocabSize];
        if (model["merges"] is JsonArray merges)
        {
            var ids = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < vocabSize; i++)
            {
                if (tokens[i] is string t)
                {
                    ids.TryAdd(t, i);
                }
            }

            for (int rank = 0; rank < merges.Count; rank++)
            {
                string merged = Merge(merges[rank], path, rank);
                if (ids.TryGetValue(merged, out int id) && scores[id] == 0)
                {
                    scores[id] = -(rank + 1);
                }
            }
        }

        string? unk = Str(model["unk_token"]);
        int? unknown = null;
        for (int i = 0; i < vocabSize; i++)
        {
            if (tokens[i] is null)
            {
                // The model's embedding is larger than the vocabulary: llama.cpp's converter pads with unused tokens.
                tokens[i] = $"[PAD{i}]";
                types[i] = Unused;
            }
            else if (tokens[i] == unk)
            {
                types[i] = UnknownType;
                unknown = i;
            }
            else if (types[i] == 0)
            {
                types[i] = ByteToken.IsMatch(tokens[i]!) ? ByteType : Normal;
            }
        }

        string[] all = tokens.Select(t => t!).ToArray();
        int? Lookup(string key, string configKey)
        {
            if (tokenizerConfig?[key] is JsonNode node && (Str(node) ?? Str((node as JsonObject)?["content"])) is string text
                && Array.IndexOf(all, text) is int id and >= 0)
            {
                return id;
            }

            return config[configKey] is JsonValue v && v.TryGetValue(out int fromConfig) && fromConfig >= 0 && fromConfig < vocabSize ? fromConfig : null;
        }

        bool? Bool(string key) => tokenizerConfig?[key] is JsonValue v && v.TryGetValue(out bool value) ? value : null;
        return new GgufLlamaVocabulary(all, scores, types, Lookup("bos_token", "bos_token_id"), Lookup("eos_token", "eos_token_id"),
            unknown, Lookup("pad_token", "pad_token_id"), Bool("add_bos_token"), Bool("add_eos_token"), prepend || metaspace);
    }

    public void WriteTo(GgufWriter writer)
    {
        writer.SetMetadata("tokenizer.ggml.model", GgufValue.String("llama"));
        writer.SetMetadata("tokenizer.ggml.tokens", GgufValue.Array(Tokens));
        writer.SetMetadata("tokenizer.ggml.scores", GgufValue.Array(Scores));
        writer.SetMetadata("tokenizer.ggml.token_type", GgufValue.Array(Types));
        writer.SetMetadata("tokenizer.ggml.add_space_prefix", GgufValue.Bool(AddSpacePrefix));
        void Id(string key, int? id)
        {
            if (id is int value)
            {
                writer.SetMetadata(key, GgufValue.UInt32((uint)value));
            }
        }

        Id("tokenizer.ggml.bos_token_id", Bos);
        Id("tokenizer.ggml.eos_token_id", Eos);
        Id("tokenizer.ggml.unknown_token_id", Unknown);
        Id("tokenizer.ggml.padding_token_id", Padding);
        if (AddBos is bool addBos)
        {
            writer.SetMetadata("tokenizer.ggml.add_bos_token", GgufValue.Bool(addBos));
        }

        if (AddEos is bool addEos)
        {
            writer.SetMetadata("tokenizer.ggml.add_eos_token", GgufValue.Bool(addEos));
        }
    }

    private static string Merge(JsonNode? merge, string path, int rank) => merge switch
    {
        // "a b" (tokenizers before 0.20) or ["a", "b"] (later versions).
        JsonValue v when v.TryGetValue(out string? s) && s.IndexOf(' ', StringComparison.Ordinal) is int space and > 0 => s[..space] + s[(space + 1)..],
        JsonArray { Count: 2 } pair when Str(pair[0]) is string a && Str(pair[1]) is string c => a + c,
        _ => throw new InvalidDataException($"{path}: merge {rank} is neither \"a b\" nor [\"a\", \"b\"]."),
    };

    private static int Id(JsonNode? node, string path, string token) =>
        node is JsonValue v && v.TryGetValue(out int id) && id >= 0 ? id : throw new InvalidDataException($"{path}: token '{token}' has no valid id.");

    private static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static bool ContainsType(JsonNode? node, string type) => node switch
    {
        JsonObject o => Str(o["type"]) == type || o.Any(p => ContainsType(p.Value, type)),
        JsonArray a => a.Any(n => ContainsType(n, type)),
        _ => false,
    };

    private static bool ContainsPrepend(JsonNode? node) => node switch
    {
        JsonObject o => (Str(o["type"]) == "Prepend" && Str(o["prepend"]) == "\u2581") || o.Any(p => ContainsPrepend(p.Value)),
        JsonArray a => a.Any(ContainsPrepend),
        _ => false,
    };
}
