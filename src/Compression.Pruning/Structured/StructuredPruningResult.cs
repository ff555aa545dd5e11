// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression.Pruning;

/// <summary>The outcome of structured pruning of one weight: the channel selection and the weight with every pruned
/// row or column zeroed.</summary>
public sealed class StructuredPruningResult
{
    internal StructuredPruningResult(ChannelSelection selection, ChannelDimension dimension, PrunedTensor pruned)
    {
        ArgumentNullException.ThrowIfNull(selection);
        ArgumentNullException.ThrowIfNull(pruned);
        Selection = selection;
        Dimension = dimension;
        Pruned = pruned;
    }

    /// <summary>The kept channels, their indices and every channel's score.</summary>
    public ChannelSelection Selection { get; }

    /// <summary>The dimension that was pruned.</summary>
    public ChannelDimension Dimension { get; }

    /// <summary>The kept rows or columns, ascending (<see cref="ChannelSelection.KeptIndices"/>).</summary>
    public IReadOnlyList<int> KeptIndices => Selection.KeptIndices;

    /// <summary>Every channel's score (<see cref="ChannelSelection.Scores"/>).</summary>
    public IReadOnlyList<double> Scores => Selection.Scores;

    /// <summary>The weight at its full shape with the pruned rows or columns zeroed, and the pruning report.</summary>
    public PrunedTensor Pruned { get; }
}
