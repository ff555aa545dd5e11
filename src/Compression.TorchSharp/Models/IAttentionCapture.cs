// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Collections.Generic;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Models;

/// <summary>
/// An attention module that can hand out its attention probabilities [batch, heads, time, time]: while
/// <see cref="Capture"/> is set, each forward appends its probabilities (detached from the dispose scope, so the list's
/// owner disposes them); while it is null the forward pass does exactly what it always does.
/// </summary>
internal interface IAttentionCapture
{
    /// <summary>Where the next forward passes append their attention probabilities; null when nothing is captured.</summary>
    List<Tensor>? Capture { get; set; }
}
