// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;

namespace Compression.Text;

/// <summary>
/// Byte-pair encoding as Hugging Face <c>tokenizers</c> runs a <c>BPE</c> model with byte fallback (the Llama /
/// SentencePiece style): the text is normalized (a <c>Prepend</c> of "▁" and a <c>Replace</c> of spaces by "▁"), split
/// into characters (a character outside the vocabulary becomes its UTF-8 bytes as <c>&lt;0xXX&gt;</c> tokens), then
/// adjacent pairs are merged lowest rank first, leftmost first among equal ranks, until no listed merge applies.
/// </summary>
/// <remarks>
/// Read from a <c>tokenizer.json</c> whose model is BPE, whose normalizer is empty or a sequence of <c>Prepend</c> and
/// <c>Replace</c> (plain strings), and which has no pre-tokenizer: the whole text is one word, merged with a priority
/// queue in O(n log n). Special tokens are never inserted by <see cref="Encode"/>, and their text inside the input is
/// encoded as ordinary text. Anything else in the file is refused with <see cref="NotSupportedException"/>.
/// </remarks>
public sealed class BpeTokenizer : ITokenizer
{
    private readonly Dictionary<string, int> _vocabulary;
    private readonly string[] _tokens;
    private readonly Dictionary<(int Left, int Right), (int Rank, int Merged)> _merges;
    private readonly (string Prepend, List<(string Pattern, string Content)> Replacements) _normalizer;
    private readonly int? _unknown;
    private readonly int[] _byteTokens;

    // Token ids size the id → token table; 2^24 is far above any published vocabulary (the largest are about 2^18).
    private const int MaxTokenId = (1 << 24) - 1;

    private BpeTokenizer(Dictionary<string, int> vocabulary, Dictionary<(int, int), (int, int)> merges, string prepend,
        List<(string, string)> replacements, int? unknown, IReadOnlyDictionary<string, int> specialTokens)
    {
        _vocabulary = vocabulary;
        _merges = merges;
        _normalizer = (prepend, replacements);
        _unknown = unknown;
        _tokens = new string[vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1];
        foreach ((string token, int id) in vocabulary)
        {
            _tokens[id] = token;
        }

        _byteTokens = new int[256];
        for (int b = 0; b < 256; b++)
        {
            _byteTokens[b] = vocabulary.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        }

        SpecialTokens = specialTokens;
    }

    /// <inheritdoc/>
    public int VocabularySize => _tokens.Length;

    /// <summary>The special (added) tokens by content, e.g. <c>&lt;|start_story|&gt;</c> → 1.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens { get; }

    /// <summary>Reads a Hugging Face <c>tokenizer.json</c>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not valid JSON or lacks the BPE model's fields.</exception>
    /// <exception cref="NotSupportedException">The file asks for a model, normalizer or pre-tokenizer this class does not run.</exception>
    public static BpeTokenizer FromHuggingFaceJson(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using JsonDocument document = Parse(File.ReadAllText(path), path);
        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{path}: no 'model' object.");
        }

        string type = model.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
        if (type != "BPE")
        {
            throw new NotSupportedException($"{path}: model type '{type}' is not supported (BPE only).");
        }

        if (root.TryGetProperty("pre_tokenizer", out JsonElement pre) && pre.ValueKind != JsonValueKind.Null)
        {
            throw new NotSupportedException($"{path}: pre-tokenizers are not supported (the text must be one word, as in Llama-style BPE).");
        }

        if (model.TryGetProperty("continuing_subword_prefix", out JsonElement prefix) && prefix.ValueKind == JsonValueKind.String ||
            model.TryGetProperty("end_of_word_suffix", out JsonElement suffix) && suffix.ValueKind == JsonValueKind.String)
        {
            throw new NotSupportedException($"{path}: subword prefixes and suffixes are not supported.");
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in Required(model, "vocab", JsonValueKind.Object, path, "the model").EnumerateObject())
        {
            // The id sizes the token table, so it is bounded before anything is allocated from it.
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id is < 0 or > MaxTokenId)
            {
                throw new InvalidDataException(
                    $"{path}: token '{entry.Name}' has id {entry.Value.GetRawText()}; ids are integers in [0, {MaxTokenId}].");
            }

            vocabulary[entry.Name] = id;
        }

        var merges = new Dictionary<(int, int), (int, int)>();
        int rank = 0;
        foreach (JsonElement merge in Required(model, "merges", JsonValueKind.Array, path, "the model").EnumerateArray())
        {
            (string left, string right) = merge.ValueKind switch
            {
                JsonValueKind.Array when merge.GetArrayLength() == 2 &&
                                         merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String =>
                    (merge[0].GetString()!, merge[1].GetString()!),
                JsonValueKind.String => Split(merge.GetString()!, path),
                _ => throw new InvalidDataException(
                    $"{path}: merge {rank} is {merge.GetRawText()}; a merge is \"left right\" or [\"left\", \"right\"]."),
            };
            if (!vocabulary.TryGetValue(left, out int l) || !vocabulary.TryGetValue(right, out int r) || !vocabulary.TryGetValue(left + right, out int m))
            {
                throw new InvalidDataException($"{path}: merge {rank} ('{left}' '{right}') uses tokens outside the vocabulary.");
            }

            merges.TryAdd((l, r), (rank, m));
            rank++;
        }

        string prepend = "";
        var replacements = new List<(string, string)>();
        if (root.TryGetProperty("normalizer", out JsonElement normalizer) && normalizer.ValueKind == JsonValueKind.Object)
        {
            IEnumerable<JsonElement> steps = Required(normalizer, "type", JsonValueKind.String, path, "the normalizer").GetString() == "Sequence"
                ? Required(normalizer, "normalizers", JsonValueKind.Array, path, "the normalizer").EnumerateArray()
                : [normalizer];
            foreach (JsonElement step in steps)
            {
                if (step.ValueKind != JsonValueKind.Object)
                {
                    throw new InvalidDataException($"{path}: normalizer step {step.GetRawText()} is not an object.");
                }

                switch (Required(step, "type", JsonValueKind.String, path, "a normalizer step").GetString())
                {
                    case "Prepend" when replacements.Count == 0 && prepend.Length == 0:
                        prepend = Required(step, "prepend", JsonValueKind.String, path, "the Prepend step").GetString()!;
                        break;
                    case "Replace" when step.TryGetProperty("pattern", out JsonElement p) && p.ValueKind == JsonValueKind.Object &&
                                       p.TryGetProperty("String", out JsonElement pattern) && pattern.ValueKind == JsonValueKind.String:
                        replacements.Add((pattern.GetString()!, Required(step, "content", JsonValueKind.String, path, "the Replace step").GetString()!));
                        break;
                    default:
                        throw new NotSupportedException($"{path}: normalizer step {step} is not supported (Prepend, then Replace of plain strings).");
                }
            }
        }

        int? unknown = model.TryGetProperty("unk_token", out JsonElement unk) && unk.ValueKind == JsonValueKind.String &&
                       vocabulary.TryGetValue(unk.GetString()!, out int u) ? u : null;
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out JsonElement added) && added.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement token in added.EnumerateArray())
            {
                if (token.ValueKind != JsonValueKind.Object ||
                    !token.TryGetProperty("content", out JsonElement content) || content.ValueKind != JsonValueKind.String ||
                    !token.TryGetProperty("id", out JsonElement id) || !id.TryGetInt32(out int value) || value < 0)
                {
                    throw new InvalidDataException($"{path}: added token {token.GetRawText()} needs a string 'content' and a non-negative integer 'id'.");
                }

                special[content.GetString()!] = value;
            }
        }

        return new BpeTokenizer(vocabulary, merges, prepend, replacements, unknown, special);
    }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
        {
            return [];
        }

        string normalized = _normalizer.Prepend + text;
        foreach ((string pattern, string content) in _normalizer.Replacements)
        {
            normalized = normalized.Replace(pattern, content, StringComparison.Ordinal);
        }

        // Symbols: one per character (a surrogate pair is one character), or its UTF-8 bytes when it is not a token.
        var ids = new List<int>(normalized.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < normalized.Length; i += char.IsSurrogatePair(normalized, i) ? 2 : 1)
        {
            string character = normalized.Substring(i, char.IsSurrogatePair(normalized, i) ? 2 : 1);
            if (_vocabulary.TryGetValue(character, out int id))
            {
                ids.Add(id);
                continue;
            }

            int count = Encoding.UTF8.GetBytes(character, utf8);
            bool all = true;
            for (int b = 0; b < count; b++)
            {
                all &= _byteTokens[utf8[b]] >= 0;
            }

            if (all)
            {
                for (int b = 0; b < count; b++)
                {
                    ids.Add(_byteTokens[utf8[b]]);
                }
            }
            else
            {
                ids.Add(_unknown ?? throw new ArgumentException($"Character '{character}' at {i} has no token, no byte tokens and there is no unknown token.", nameof(text)));
            }
        }

        return Merge(ids);
    }

    /// <summary>Applies the merges, lowest rank first and leftmost first among equal ranks, over a linked list of symbols.</summary>
    private int[] Merge(List<int> symbols)
    {
        int n = symbols.Count;
        int[] id = symbols.ToArray();
        var next = new int[n];
        var previous = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++)
        {
            next[i] = i + 1 < n ? i + 1 : -1;
            previous[i] = i - 1;
            alive[i] = true;
        }

        var queue = new PriorityQueue<(int Left, int Right, int LeftId, int RightId), (int Rank, int Position)>();
        void Offer(int left)
        {
            int right = left < 0 ? -1 : next[left];
            if (right >= 0 && _merges.TryGetValue((id[left], id[right]), out (int Rank, int Merged) merge))
            {
                queue.Enqueue((left, right, id[left], id[right]), (merge.Rank, left));
            }
        }

        for (int i = 0; i < n - 1; i++)
        {
            Offer(i);
        }

        while (queue.TryDequeue(out (int Left, int Right, int LeftId, int RightId) pair, out _))
        {
            // Entries go stale when a neighbour merged first; they are skipped, not removed.
            if (!alive[pair.Left] || !alive[pair.Right] || next[pair.Left] != pair.Right || id[pair.Left] != pair.LeftId || id[pair.Right] != pair.RightId)
            {
                continue;
            }

            id[pair.Left] = _merges[(pair.LeftId, pair.RightId)].Merged;
            alive[pair.Right] = false;
            next[pair.Left] = next[pair.Right];
            if (next[pair.Right] >= 0)
            {
                previous[next[pair.Right]] = pair.Left;
            }

            Offer(previous[pair.Left]);
            Offer(pair.Left);
        }

        var result = new List<int>(n);
        for (int i = 0; i >= 0 && i < n; i = next[i])
        {
            result.Add(id[i]);
        }

        return result.ToArray();
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids)
    {
        // Tokens with "▁" as spaces; runs of <0xXX> byte tokens fused and decoded as UTF-8; one leading space stripped.
        var text = new StringBuilder();
        var bytes = new List<byte>();
        foreach (int i in ids)
        {
            if ((uint)i >= (uint)_tokens.Length || _tokens[i] is null)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), i, $"Ids lie in [0, {_tokens.Length}).");
            }

            string token = _tokens[i];
            if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token.EndsWith('>'))
            {
                bytes.Add(Convert.ToByte(token.Substring(3, 2), 16));
                continue;
            }

            Flush(bytes, text);
            text.Append(token.Replace('\u2581', ' '));
        }

        Flush(bytes, text);
        return text.Length > 0 && text[0] == ' ' ? text.ToString(1, text.Length - 1) : text.ToString();
    }

    private static void Flush(List<byte> bytes, StringBuilder text)
    {
        if (bytes.Count > 0)
        {
            text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
            bytes.Clear();
        }
    }

    private static JsonElement Required(JsonElement parent, string name, JsonValueKind kind, string path, string owner) =>
        parent.TryGetProperty(name, out JsonElement value) && value.ValueKind == kind
            ? value
            : throw new InvalidDataException($"{path}: {owner} has no '{name}' {kind.ToString().ToLowerInvariant()}.");

    private static (string, string) Split(string merge, string path)
    {
        int space = merge.IndexOf(' ', StringComparison.Ordinal);
        return space > 0 && space < merge.Length - 1
            ? (merge[..space], merge[(space + 1)..])
            : throw new InvalidDataException($"{path}: merge '{merge}' is not two tokens separated by a space.");
    }

    private static JsonDocument Parse(string text, string path)
    {
        try
        {
            return JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }
}
