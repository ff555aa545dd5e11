// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Text;

/// <summary>Maps text to token ids and back, so evaluators and calibration sets work with any vocabulary.</summary>
public interface ITokenizer
{
    /// <summary>The number of distinct token ids.</summary>
    int VocabularySize { get; }

    /// <summary>The ids of <paramref name="text"/>, with no special tokens added.</summary>
    /// <exception cref="ArgumentException">The text holds something the vocabulary cannot encode.</exception>
    int[] Encode(string text);

    /// <summary>The text of <paramref name="ids"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    string Decode(ReadOnlySpan<int> ids);
}
