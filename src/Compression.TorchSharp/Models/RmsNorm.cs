// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Models;

/// <summary>RMSNorm as Hugging Face's Llama computes it: x·rsqrt(mean(x²) + ε), then times the weight.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter _weight;
    private readonly double _epsilon;

    /// <summary>Creates the norm over the last dimension of <paramref name="size"/> values (weight initialised to 1).</summary>
    public RmsNorm(long size, double epsilon)
        : base(nameof(RmsNorm))
    {
        _weight = new Parameter(torch.ones(size));
        _epsilon = epsilon;
        register_parameter("weight", _weight);
    }

    /// <summary>The scale per feature.</summary>
    public Parameter Weight => _weight;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor variance = input.pow(2).mean([-1L], keepdim: true);
        return (_weight * (input * torch.rsqrt(variance + _epsilon))).MoveToOuterDisposeScope();
    }
}
