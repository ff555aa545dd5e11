// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text.Json;
using System.Text.Json.Nodes;
using Compression.Text;

namespace Compression.Tool.Infrastructure;

/// <summary>
/// A tokenizer chosen for a checkpoint, and the token streams the commands cut from text files: calibration windows
/// for GPTQ, SparseGPT, Wanda and activation-aware factorisation, and the evaluation stream.
/// </summary>
/// <param name="Tokenizer">The tokenizer.</param>
/// <param name="Bos">The beginning-of-sequence id put before each window (Hugging Face BPE tokenizers, from config.json's
/// <c>bos_token_id</c>), or null (character-level vocabularies: windows of plain text, the shakespeare-char protocol).</param>
/// <param name="Source">The file it was read from.</param>
/// <param name="Kind"><c>bpe</c> (tokenizer.json) or <c>char</c> (a <c>meta.json</c> with a <c>vocab</c> string).</param>
internal sealed record TextData(ITokenizer Tokenizer, int? Bos, string Source, string Kind)
{
    /// <summary>Reads <paramref name="tokenizerPath"/> (default: the checkpoint's tokenizer.json): a Hugging Face
    /// <c>tokenizer.json</c>, or a nanoGPT-style <c>meta.json</c> whose <c>vocab</c> string lists the characters in id
    /// order.</summary>
    public static TextData Load(string? tokenizerPath, CheckpointLocation checkpoint)
    {
        string path = tokenizerPath ?? Path.Combine(checkpoint.Folder, "tokenizer.json");
        if (!File.Exists(path))
        {
            throw ToolException.Input(tokenizerPath is null
                ? $"'{checkpoint.Folder}' has no tokenizer.json; pass --tokenizer <tokenizer.json | meta.json> (character-level models keep their vocabulary in a meta.json)."
                : $"tokenizer '{tokenizerPath}' does not exist.");
        }

        try
        {
            JsonNode? root = JsonNode.Parse(File.ReadAllText(path));
            if (root is JsonObject meta && meta["vocab"] is JsonValue vocab && vocab.TryGetValue(out string? alphabet))
            {
                return new TextData(new CharacterTokenizer(alphabet), null, path, "char");
            }

            BpeTokenizer bpe = BpeTokenizer.FromHuggingFaceJson(path);
            return new TextData(bpe, BosOf(checkpoint, bpe.VocabularySize), path, "bpe");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidDataException or
                                  NotSupportedException or ArgumentException)
        {
            throw ToolException.Input($"cannot read tokenizer '{path}': {e.Message}", e);
        }
    }

    /// <summary>The whole text file encoded, cut to at most <paramref name="maxTokens"/> ids.</summary>
    public int[] Encode(string textPath, string what, int? maxTokens = null)
    {
        string text;
        try
        {
            text = File.ReadAllText(textPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ToolException.Input($"cannot read {what} '{textPath}': {e.Message}", e);
        }

        int[] ids = Tokenizer.Encode(text);
        if (ids.Length == 0)
        {
            throw ToolException.Input($"{what} '{textPath}' holds no text.");
        }

        return maxTokens is int max && ids.Length > max ? ids[..max] : ids;
    }

    /// <summary>
    /// Up to <paramref name="samples"/> calibration sequences of <paramref name="length"/> tokens cut one after the other
    /// from the start of the encoded text (BOS + <paramref name="length"/> − 1 text tokens when the tokenizer has a BOS).
    /// </summary>
    public IReadOnlyList<int[]> CalibrationWindows(string textPath, int samples, int length)
    {
        int body = Bos is null ? length : length - 1;
        if (body < 1)
        {
            throw ToolException.Usage($"--seq-len {length} leaves no room for text after the BOS token.");
        }

        int[] ids = Encode(textPath, "calibration text", maxTokens: checked(samples * body));
        var windows = new List<int[]>(samples);
        for (int start = 0; start + body <= ids.Length && windows.Count < samples; start += body)
        {
            windows.Add(Bos is int bos ? [bos, .. ids.AsSpan(start, body)] : ids[start..(start + body)]);
        }

        if (windows.Count == 0)
        {
            throw ToolException.Input($"calibration text '{textPath}' has {ids.Length} tokens, fewer than one window of {body}; lower --seq-len or give more text.");
        }

        return windows;
    }

    private static int? BosOf(CheckpointLocation checkpoint, int vocabularySize)
    {
        if (checkpoint.ConfigPath is not string config ||
            JsonNode.Parse(File.ReadAllText(config)) is not JsonObject root ||
            root["bos_token_id"] is not JsonValue value || !value.TryGetValue(out int bos))
        {
            return null;
        }

        return bos >= 0 && bos < vocabularySize ? bos : null;
    }
}
