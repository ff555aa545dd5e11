// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Pruning;

/// <summary>How structured pruning scores a channel (a row or column, or a group of them such as a head).</summary>
public enum ChannelScore
{
    /// <summary>The L1 norm of the channel's weights, <c>Σ|w|</c>.</summary>
    L1,

    /// <summary>The L2 norm of the channel's weights, <c>sqrt(Σw²)</c>.</summary>
    L2,

    /// <summary>First-order Taylor importance <c>Σ|w·g|</c> with g the loss gradient of each weight (Molchanov et al.,
    /// "Importance Estimation for Neural Network Pruning", 2019): the estimated loss change of zeroing the channel,
    /// weight by weight. Needs the gradient.</summary>
    Taylor,
}
