// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.TorchSharp.Distillation;

/// <summary>How a student hidden state is compared with the teacher's (see <see cref="DistillationLosses"/>).</summary>
public enum HiddenStateLoss
{
    /// <summary>Mean squared error over the hidden dimension (TinyBERT, DistilBERT's hidden term).</summary>
    MeanSquaredError,

    /// <summary>1 − cosine similarity per position (DistilBERT's cosine embedding loss): ignores the norm.</summary>
    Cosine,
}
