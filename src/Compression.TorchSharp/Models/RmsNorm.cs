// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Models;

/// <summary>RMSNorm as Hugging Face's Llama computes it: x·rsqrt(mean(x²) + ε), then times the weight.</summary>
/// <remarks>bfloat16 and float16 inputs are normalised in float32 and cast back before the weight is applied, as
/// Hugging Face does; float32 and float64 inputs are normalised in their own precision.</remarks>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly double _epsilon;

    /// <summary>Creates the norm over the last dimension of <paramref name="size"/> values (weight initialised to 1).</summary>
    public RmsNorm(long size, double epsilon)
        : base(nameof(RmsNorm))
    {
        _epsilon = epsilon;
        register_parameter("weight", new Parameter(torch.ones(size)));
    }

    /// <summary>The scale per feature.</summary>
    /// <remarks>Looked up on every use rather than kept in a field: <c>Module.to(dtype)</c> and <c>to(device)</c>
    /// replace the parameter object, and a field would keep the disposed one.</remarks>
    public Parameter Weight => get_parameter("weight") ?? throw new InvalidOperationException("RmsNorm has no weight parameter.");

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        bool reduced = input.dtype is ScalarType.BFloat16 or ScalarType.Float16;
        Tensor x = reduced ? input.to(ScalarType.Float32) : input;
        Tensor variance = x.pow(2).mean([-1L], keepdim: true);
        Tensor normalised = x * torch.rsqrt(variance + _epsilon);
        return (Weight * (reduced ? normalised.to(input.dtype) : normalised)).MoveToOuterDisposeScope();
    }
}
