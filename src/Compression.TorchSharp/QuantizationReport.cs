// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression;

/// <summary>One quantized layer.</summary>
/// <param name="Name">The module name (<c>model.layers.0.self_attn.q_proj</c>).</param>
/// <param name="Format">The format's name (<c>int4</c>, <c>nvfp4</c>, …) and granularity.</param>
/// <param name="Method">RTN or GPTQ.</param>
/// <param name="Rows">Output features.</param>
/// <param name="Columns">Input features.</param>
/// <param name="BitsPerWeight">Storage bits per weight, scales, zero points and GPTQ's permutation included.</param>
/// <param name="Objective">GPTQ's ‖(W − Q)Xᵀ‖²/n on the calibration inputs; NaN for round-to-nearest.</param>
/// <param name="Elapsed">Time to quantize the layer (Hessian accumulation excluded).</param>
public sealed record LayerQuantization(string Name, string Format, QuantizationMethod Method, int Rows, int Columns, double BitsPerWeight,
    double Objective, TimeSpan Elapsed)
{
    /// <summary>The quantized weight (codes, scales, zero points, GPTQ's order): what <see cref="Quantizer.Pack"/>
    /// puts in a <see cref="TorchSharp.QuantizedLinear"/> and <see cref="TorchSharp.CompressedModels"/> saves.</summary>
    public CompressedTensor? Weight { get; init; }

    /// <summary>The layer's declared input-activation quantization (<see cref="QuantizerOptions.InputActivations"/>),
    /// simulated when the model runs and written to a compressed-tensors checkpoint; null for weight-only.</summary>
    public ActivationQuantization? InputActivations { get; init; }
}

/// <summary>What <see cref="Quantizer"/> did to a model.</summary>
/// <param name="Layers">The quantized layers in model order.</param>
/// <param name="OriginalBits">Storage of every parameter at 16 bits (the BF16 checkpoint baseline).</param>
/// <param name="CompressedBits">The same with each quantized layer's weight at its <see cref="LayerQuantization.BitsPerWeight"/>.</param>
/// <param name="Elapsed">Wall-clock time, calibration included.</param>
public sealed record QuantizationReport(IReadOnlyList<LayerQuantization> Layers, long OriginalBits, long CompressedBits, TimeSpan Elapsed)
{
    /// <summary>Layers taken from the layer journal of <see cref="Quantizer.ApplyResumable"/> instead of recomputed.</summary>
    public int ResumedLayers { get; init; }

    /// <summary>OriginalBits / CompressedBits.</summary>
    public double CompressionRatio => CompressedBits == 0 ? 1 : (double)OriginalBits / CompressedBits;
}
