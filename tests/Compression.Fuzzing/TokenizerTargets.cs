// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Text;

namespace Compression.Fuzzing;

/// <summary>The BPE tokenizer's file loading (<see cref="BpeTokenizer.FromHuggingFaceJson"/>), then a round of
/// <see cref="BpeTokenizer.Encode"/> and <see cref="BpeTokenizer.Decode"/> on fixed text.</summary>
public static class TokenizerTargets
{
    private const string Text = "Once upon a time, a tiny dog named Ünal found 3 shiny 🪙 coins.";

    /// <summary>
    /// The input is a <c>tokenizer.json</c>. Documented: <see cref="InvalidDataException"/> and
    /// <see cref="NotSupportedException"/> from loading; <see cref="ArgumentException"/> on <c>text</c> from
    /// <see cref="BpeTokenizer.Encode"/> when a character has no token.
    /// </summary>
    public static void Bpe(ReadOnlySpan<byte> input) => FuzzScratch.WithFile(input, "tokenizer.json", path =>
    {
        BpeTokenizer tokenizer;
        try
        {
            tokenizer = BpeTokenizer.FromHuggingFaceJson(path);
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            return;
        }

        int[] ids;
        try
        {
            ids = tokenizer.Encode(Text);
        }
        catch (ArgumentException e) when (e.ParamName == "text")
        {
            return;
        }

        foreach (int id in ids)
        {
            if ((uint)id >= (uint)tokenizer.VocabularySize)
            {
                throw new InvalidOperationException($"Encode produced id {id} outside [0, {tokenizer.VocabularySize}).");
            }
        }

        _ = tokenizer.Decode(ids);
    });
}
