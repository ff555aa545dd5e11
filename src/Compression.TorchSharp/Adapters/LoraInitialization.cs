// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.TorchSharp.Adapters;

/// <summary>How a <see cref="LoraLinear"/> starts.</summary>
public enum LoraInitialization
{
    /// <summary>A Kaiming-uniform (bound 1/√in, the <c>nn.Linear</c> default PEFT also uses), B zero: ΔW = 0, so the
    /// model's outputs are unchanged at the start.</summary>
    Kaiming,

    /// <summary>PiSSA (Meng et al., "PiSSA: Principal Singular Values and Singular Vectors Adaptation of Large Language
    /// Models", 2024): A and B take the top-r singular triplets of W and the base keeps the residual, so outputs are
    /// unchanged (up to float32 rounding) while training starts on the principal directions. Needs a dense base.</summary>
    Pissa,
}
