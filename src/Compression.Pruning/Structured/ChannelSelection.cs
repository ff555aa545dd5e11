// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression.Pruning;

/// <summary>
/// Which channels structured pruning keeps: channel (group) indices, the rows or columns they cover, and every
/// channel's score. Immutable.
/// </summary>
public sealed class ChannelSelection
{
    internal ChannelSelection(int[] keptChannels, int groupSize, double[] scores)
    {
        // Read-only wrappers: the arrays cannot be reached through a cast to change a selection after the fact.
        KeptChannels = Array.AsReadOnly(keptChannels);
        GroupSize = groupSize;
        Scores = Array.AsReadOnly(scores);
        var indices = new int[keptChannels.Length * groupSize];
        for (int i = 0; i < keptChannels.Length; i++)
        {
            for (int j = 0; j < groupSize; j++)
            {
                indices[i * groupSize + j] = keptChannels[i] * groupSize + j;
            }
        }

        KeptIndices = Array.AsReadOnly(indices);
    }

    /// <summary>The kept channels, ascending (a channel is <see cref="GroupSize"/> consecutive rows or columns).</summary>
    public IReadOnlyList<int> KeptChannels { get; }

    /// <summary>The kept rows or columns, ascending: every index of every kept channel. Equal to
    /// <see cref="KeptChannels"/> when <see cref="GroupSize"/> is 1. What <see cref="StructuredPruner.Shrink"/> takes.</summary>
    public IReadOnlyList<int> KeptIndices { get; }

    /// <summary>The score of every channel, kept or not, by channel index (for L2 the norm; for Taylor Σ|w·g|).</summary>
    public IReadOnlyList<double> Scores { get; }

    /// <summary>Rows or columns per channel.</summary>
    public int GroupSize { get; }

    /// <summary>The number of channels scored.</summary>
    public int ChannelCount => Scores.Count;
}
