// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>
/// A linear layer whose weight is kept compressed (packed codes and scales, a <see cref="CompressedTensor"/> from the
/// quantizers): the dense weight exists only during a forward pass, which dequantizes it and multiplies as
/// <c>nn.Linear</c> does, so its output equals that of a <c>Linear</c> holding the dequantized weight.
/// </summary>
/// <remarks>
/// <see cref="Quantizer.Pack"/> swaps a quantized model's linear layers for these; <see cref="CompressedModels"/>
/// saves and loads them in the compressed-tensors layout. The bias (if any) stays a float32 parameter named
/// <c>bias</c>, so parameter names match the original model's.
/// </remarks>
public sealed class QuantizedLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter? _bias;

    /// <summary>Wraps a compressed weight [out, in] and an optional bias [out] (copied).</summary>
    /// <exception cref="ArgumentException">The bias does not have one value per output.</exception>
    public QuantizedLinear(CompressedTensor weight, Tensor? bias = null)
        : base(nameof(QuantizedLinear))
    {
        ArgumentNullException.ThrowIfNull(weight);
        Weight = weight;
        if (bias is not null)
        {
            if (bias.ndim != 1 || bias.shape[0] != weight.Rows)
            {
                throw new ArgumentException($"The bias has shape [{string.Join(", ", bias.shape)}]; [{weight.Rows}] expected.", nameof(bias));
            }

            _bias = new Parameter(bias.detach().to(ScalarType.Float32).clone(), requires_grad: false);
            register_parameter("bias", _bias);
        }
    }

    /// <summary>The compressed weight, [out, in].</summary>
    public CompressedTensor Weight { get; }

    /// <summary>Input features.</summary>
    public long InFeatures => Weight.Columns;

    /// <summary>Output features.</summary>
    public long OutFeatures => Weight.Rows;

    /// <summary>The bias, or null.</summary>
    public Parameter? Bias => _bias;

    /// <summary>y = x·Wᵀ + b with W dequantized for this call.</summary>
    public override Tensor forward(Tensor input)
    {
        using Tensor weight = Weight.Decompress().ToTorchTensor(device: input.device);
        return nn.functional.linear(input, weight, _bias);
    }
}
