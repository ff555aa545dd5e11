// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Models;

/// <summary>Which side of a linear weight [out, in] a channel occupies.</summary>
internal enum ChannelSide
{
    /// <summary>Rows: outputs (and the bias).</summary>
    Rows,

    /// <summary>Columns: inputs.</summary>
    Columns,
}

/// <summary>Channel c of a structure occupies rows (or columns) Offset + c·Width … Offset + (c + 1)·Width − 1 of
/// <paramref name="Layer"/>.</summary>
internal sealed record ChannelSlice(Linear Layer, ChannelSide Side, int Offset, int Width);

/// <summary>
/// A structure whose channels can be removed together from every layer they span: an MLP's intermediate channels
/// (gate/up rows with down columns), an attention's heads (q/k/v rows with the output projection's columns; with
/// grouped-query attention a channel is a key/value head with its query heads).
/// </summary>
internal interface IPrunableChannels
{
    /// <summary>"mlp" or "attention".</summary>
    string Kind { get; }

    /// <summary>How many channels there are now.</summary>
    int ChannelCount { get; }

    /// <summary>Where each channel sits in the structure's linear layers.</summary>
    IReadOnlyList<ChannelSlice> Slices { get; }

    /// <summary>Keeps only <paramref name="channels"/> (ascending): every spanned layer is replaced by a smaller one.</summary>
    void Keep(int[] channels);
}

internal static class ChannelShrinking
{
    /// <summary>The row or column indices that <paramref name="channels"/> occupy in one slice.</summary>
    public static long[] Indices(ChannelSlice slice, int[] channels) =>
        channels.SelectMany(c => Enumerable.Range(slice.Offset + c * slice.Width, slice.Width)).Select(i => (long)i).ToArray();

    /// <summary>A new linear layer holding the kept rows and/or columns of <paramref name="layer"/> (bias follows rows).</summary>
    public static Linear Shrink(Linear layer, long[]? rows, long[]? columns)
    {
        using var noGrad = torch.no_grad();
        Tensor weight = layer.weight!;
        using Tensor rowIndex = rows is null ? torch.arange(weight.shape[0], ScalarType.Int64) : torch.tensor(rows);
        using Tensor columnIndex = columns is null ? torch.arange(weight.shape[1], ScalarType.Int64) : torch.tensor(columns);
        using Tensor kept = weight.index_select(0, rowIndex).index_select(1, columnIndex);
        var result = nn.Linear(kept.shape[1], kept.shape[0], hasBias: layer.bias is not null);
        result.weight!.copy_(kept);
        if (layer.bias is not null)
        {
            using Tensor bias = layer.bias.index_select(0, rowIndex);
            result.bias!.copy_(bias);
        }

        result.eval();
        return result;
    }

    /// <summary>Shrinks every slice of a layer at once (a layer may hold several slices, as GPT-2's fused q/k/v).</summary>
    public static Linear ShrinkLayer(IEnumerable<ChannelSlice> slicesOfOneLayer, int[] channels)
    {
        ChannelSlice[] slices = slicesOfOneLayer.ToArray();
        long[]? rows = slices.Any(s => s.Side == ChannelSide.Rows)
            ? slices.Where(s => s.Side == ChannelSide.Rows).SelectMany(s => Indices(s, channels)).ToArray() : null;
        long[]? columns = slices.Any(s => s.Side == ChannelSide.Columns)
            ? slices.Where(s => s.Side == ChannelSide.Columns).SelectMany(s => Indices(s, channels)).ToArray() : null;
        return Shrink(slices[0].Layer, rows, columns);
    }
}
