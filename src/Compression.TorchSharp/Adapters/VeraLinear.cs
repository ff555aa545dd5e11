// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Adapters;

/// <summary>
/// VeRA (Kopiczko et al., "VeRA: Vector-based Random Matrix Adaptation", ICLR 2024): ΔW = diag(b)·B·diag(d)·A with A, B
/// frozen random matrices shared by all layers (<see cref="VeraProjections"/>) and only the vectors d [r] and b [out]
/// trained, so a layer costs r + out trainable values whatever its width.
/// </summary>
/// <remarks>b starts at zero (so the layer starts unchanged) and d at <see cref="LoraOptions.VeraInitialD"/>, as in the
/// paper and PEFT. There is no α: the trained vectors carry the scale.</remarks>
public sealed class VeraLinear : AdapterLinear
{
    private Tensor _a => get_buffer("vera_A") ?? throw new InvalidOperationException("VeraLinear has no buffer 'vera_A'.");
    private Tensor _b => get_buffer("vera_B") ?? throw new InvalidOperationException("VeraLinear has no buffer 'vera_B'.");
    private Parameter _lambdaD => RegisteredParameter("vera_lambda_d");
    private Parameter _lambdaB => RegisteredParameter("vera_lambda_b");

    /// <summary>Wraps <paramref name="baseLayer"/> with vectors over the shared <paramref name="projections"/>.</summary>
    /// <exception cref="ArgumentException">The projections are narrower than the layer, or their rank exceeds min(in, out).</exception>
    public VeraLinear(nn.Module<Tensor, Tensor> baseLayer, VeraProjections projections, LoraOptions options)
        : base(nameof(VeraLinear), baseLayer)
    {
        ArgumentNullException.ThrowIfNull(projections);
        ArgumentNullException.ThrowIfNull(options);
        LoraLinear.CheckRank(projections.Rank, InFeatures, OutFeatures);
        if (projections.A.shape[1] < InFeatures || projections.B.shape[0] < OutFeatures)
        {
            throw new ArgumentException($"The shared projections cover [{projections.B.shape[0]} out, {projections.A.shape[1]} in]; this layer needs [{OutFeatures}, {InFeatures}].", nameof(projections));
        }

        Options = options;
        Projections = projections;
        // Views of the shared pair: registered as buffers so they follow the module, never trained, one storage.
        register_buffer("vera_A", projections.A.narrow(1, 0, InFeatures), persistent: false);
        register_buffer("vera_B", projections.B.narrow(0, 0, OutFeatures), persistent: false);
        register_parameter("vera_lambda_d", new Parameter(torch.full(projections.Rank, options.VeraInitialD, ScalarType.Float32), requires_grad: true));
        register_parameter("vera_lambda_b", new Parameter(torch.zeros(OutFeatures), requires_grad: true));
    }

    /// <inheritdoc/>
    public override LoraOptions Options { get; }

    /// <summary>The shared random pair.</summary>
    public VeraProjections Projections { get; }

    /// <summary>d, [r] (PEFT's <c>vera_lambda_d</c>).</summary>
    public Parameter LambdaD => _lambdaD;

    /// <summary>b, [out] (PEFT's <c>vera_lambda_b</c>).</summary>
    public Parameter LambdaB => _lambdaB;

    /// <inheritdoc/>
    protected override Tensor AdaptedForward(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor x = Options.Dropout > 0 ? nn.functional.dropout(input, Options.Dropout, training) : input;
        Tensor update = nn.functional.linear(nn.functional.linear(x, InDtype(_a, x.dtype)) * _lambdaD, InDtype(_b, x.dtype)) * _lambdaB;
        return (BaseLayer.call(input) + update).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override Tensor MergedWeight(Tensor weight)
    {
        using var scope = NewDisposeScope();
        Tensor delta = (InDtype(_b, weight.dtype) * _lambdaD.detach().unsqueeze(0) * _lambdaB.detach().unsqueeze(1)).matmul(InDtype(_a, weight.dtype));
        return (weight + delta).MoveToOuterDisposeScope();
    }

    internal override IEnumerable<(string Name, Tensor Tensor)> AdapterTensors()
    {
        yield return ("vera_lambda_b", _lambdaB);
        yield return ("vera_lambda_d", _lambdaD);
    }

    // The shared projections are non-persistent buffers, which Module.to(dtype) leaves as they are: cast them to the
    // activations' dtype here (never aliasing one already in that dtype into a dispose scope).
    private static Tensor InDtype(Tensor tensor, ScalarType dtype) => tensor.dtype == dtype ? tensor : tensor.to(dtype);
}
