// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Pruning;

/// <summary>Which channels of an [out, in] weight structured pruning removes.</summary>
public enum ChannelDimension
{
    /// <summary>Rows: output features (neurons, attention heads of q/k/v, an MLP's intermediate features in up/gate).</summary>
    OutputChannels,

    /// <summary>Columns: input features (the same intermediate features seen from the down projection, or o_proj's heads).</summary>
    InputChannels,
}
