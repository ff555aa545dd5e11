// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace Compression.Text;

/// <summary>
/// One token per character: the id of a character is its index in the alphabet (nanoGPT's shakespeare-char models:
/// the distinct characters of the corpus sorted by code point).
/// </summary>
public sealed class CharacterTokenizer : ITokenizer
{
    private readonly Dictionary<char, int> _ids;

    /// <summary>Creates a tokenizer over <paramref name="alphabet"/> (distinct characters, id = position).</summary>
    /// <exception cref="ArgumentException">The alphabet is empty or repeats a character.</exception>
    public CharacterTokenizer(string alphabet)
    {
        ArgumentException.ThrowIfNullOrEmpty(alphabet);
        _ids = new Dictionary<char, int>(alphabet.Length);
        for (int i = 0; i < alphabet.Length; i++)
        {
            if (!_ids.TryAdd(alphabet[i], i))
            {
                throw new ArgumentException($"The alphabet repeats '{alphabet[i]}' (U+{(int)alphabet[i]:X4}) at {i}.", nameof(alphabet));
            }
        }

        Alphabet = alphabet;
    }

    /// <summary>The characters, in id order.</summary>
    public string Alphabet { get; }

    /// <inheritdoc/>
    public int VocabularySize => Alphabet.Length;

    /// <summary>The tokenizer of a corpus: its distinct characters sorted by code point.</summary>
    public static CharacterTokenizer FromCorpus(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        return new CharacterTokenizer(new string(text.Distinct().Order().ToArray()));
    }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new int[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            if (!_ids.TryGetValue(text[i], out ids[i]))
            {
                throw new ArgumentException($"Character '{text[i]}' (U+{(int)text[i]:X4}) at {i} is not in the {Alphabet.Length}-character alphabet.", nameof(text));
            }
        }

        return ids;
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var builder = new StringBuilder(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)Alphabet.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Ids lie in [0, {Alphabet.Length}).");
            }

            builder.Append(Alphabet[id]);
        }

        return builder.ToString();
    }
}
