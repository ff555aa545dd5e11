// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.TorchSharp.Adapters;

/// <summary>Which member of the LoRA family <see cref="Lora.Apply"/> inserts.</summary>
public enum AdapterMethod
{
    /// <summary>LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", 2021), with its DoRA, rsLoRA and
    /// PiSSA variants chosen by <see cref="LoraOptions.UseDora"/>, <see cref="LoraOptions.UseRsLora"/> and
    /// <see cref="LoraOptions.Initialization"/>: <see cref="LoraLinear"/>.</summary>
    Lora,

    /// <summary>VeRA (Kopiczko et al., "VeRA: Vector-based Random Matrix Adaptation", 2024): <see cref="VeraLinear"/>.</summary>
    Vera,

    /// <summary>DyLoRA (Valipour et al., "DyLoRA: Parameter-Efficient Tuning of Pre-trained Models using Dynamic
    /// Search-Free Low-Rank Adaptation", 2023): <see cref="DyLoraLinear"/>.</summary>
    DyLora,

    /// <summary>AdaLoRA (Zhang et al., "Adaptive Budget Allocation for Parameter-Efficient Fine-Tuning", 2023):
    /// <see cref="AdaLoraLinear"/>, with <see cref="AdaLoraRankAllocator"/> driving the budget.</summary>
    AdaLora,
}
