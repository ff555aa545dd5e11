// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Tensors;

namespace Compression.Pruning;

/// <summary>
/// One matrix taking part in a joint channel selection (<see cref="StructuredPruner.SelectJoint"/>): the weight, the
/// dimension along which it holds the shared channels, and its gradient when channels are scored by Taylor importance.
/// </summary>
/// <param name="Weight">The [out, in] weight; not modified.</param>
/// <param name="Dimension">Rows when the shared channels are its outputs (an MLP's up/gate), columns when they are its
/// inputs (the MLP's down projection).</param>
/// <param name="Gradient">The loss gradient of <paramref name="Weight"/>, same shape; needed only for
/// <see cref="ChannelScore.Taylor"/>.</param>
public sealed record ChannelMatrix(DenseTensor Weight, ChannelDimension Dimension, DenseTensor? Gradient = null);
