// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// Which parts of a student <see cref="Distiller"/> trains. Every selected part keeps the invariants of the compression
/// that produced it: pruned weights stay zero, quantization codes stay on their grid, ranks stay as they were.
/// </summary>
/// <remarks>Parameters that are not selected get <c>requires_grad = false</c> for the run and are left bit for bit as they
/// were. <see cref="DistillerOptions.Trainable"/> left null picks the parts from the student's structure (see there).</remarks>
[Flags]
public enum TrainableParts
{
    /// <summary>Nothing (refused: a run must train something).</summary>
    None = 0,

    /// <summary>The adapter parameters of <see cref="Adapters.AdapterLinear"/> layers (LoRA A and B, DoRA magnitudes,
    /// VeRA vectors, …) that were trainable when <see cref="Distiller.Train"/> was called; their base layers never
    /// train (merge the adapters first to train the base).</summary>
    Adapters = 1,

    /// <summary>The scales of <see cref="QuantizedLinear"/> layers (packed by <see cref="Quantizer.Pack"/>): the codes
    /// stay fixed, the scales train in float32 and are rounded to their storage type when training ends.</summary>
    QuantizationScales = 2,

    /// <summary>Both factors of <see cref="LowRankLinear"/> layers (the rank stays).</summary>
    LowRankFactors = 4,

    /// <summary>The weights of the dense linear layers inside the decoder blocks, with the zero pattern each has when the
    /// run starts kept as its mask: gradients are masked and the mask is re-applied after every step, so a pruned
    /// layer (unstructured, N:M) keeps exactly its sparsity. A dense layer trains fully, except that an exact zero in it
    /// counts as pruned: a <em>fake</em>-quantized layer has one wherever the code is 0, so pack a quantized student
    /// (<see cref="Quantizer.Pack"/>) and train its <see cref="QuantizationScales"/> instead.</summary>
    UnprunedWeights = 8,

    /// <summary>The weights (and biases) of the normalisation layers (RMSNorm, LayerNorm).</summary>
    Norms = 16,

    /// <summary>The biases of linear layers (quantized, low-rank and dense).</summary>
    Biases = 32,

    /// <summary>The token (and position) embeddings and the head (a tied head is the embedding itself).</summary>
    Embeddings = 64,

    /// <summary>The parts a compressed student recovers with: adapters, quantization scales, low-rank factors and the
    /// unpruned block weights.</summary>
    Compressed = Adapters | QuantizationScales | LowRankFactors | UnprunedWeights,

    /// <summary>Everything: <see cref="Compressed"/>, norms, biases and embeddings (adapters' base layers still stay
    /// frozen, and compression invariants still hold).</summary>
    All = Compressed | Norms | Biases | Embeddings,
}
