// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Adapters;

/// <summary>
/// AdaLoRA's SVD-form adapter (Zhang et al., "Adaptive Budget Allocation for Parameter-Efficient Fine-Tuning", ICLR
/// 2023): ΔW = s·P·diag(λ)·Q with P [out, r], λ [r], Q [r, in] and s = α/r. <see cref="AdaLoraRankAllocator"/> scores
/// each triplet (P[:, i], λᵢ, Q[i, :]) and zeroes the λᵢ of the least important ones across all layers; the
/// orthogonality regulariser (<see cref="OrthogonalityPenalty"/>) keeps P and Q close to orthonormal so that λ behaves
/// like singular values and removing one does little harm.
/// </summary>
/// <remarks>λ starts at zero (the layer starts unchanged) and P, Q as N(0, 0.02²), as PEFT. Saved under PEFT's AdaLoRA
/// names: <c>lora_A</c> = Q, <c>lora_B</c> = P, <c>lora_E</c> = λ as [r, 1].</remarks>
public sealed class AdaLoraLinear : AdapterLinear
{
    private Parameter _p => RegisteredParameter("lora_B");
    private Parameter _lambda => RegisteredParameter("lora_E");
    private Parameter _q => RegisteredParameter("lora_A");
    private readonly bool[] _active;

    /// <summary>Wraps <paramref name="baseLayer"/> with a rank-<see cref="LoraOptions.Rank"/> SVD-form adapter.</summary>
    /// <exception cref="ArgumentException">The rank exceeds min(in, out), or the base is not linear.</exception>
    public AdaLoraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, int? seed = null)
        : base(nameof(AdaLoraLinear), baseLayer)
    {
        ArgumentNullException.ThrowIfNull(options);
        LoraLinear.CheckRank(options.Rank, InFeatures, OutFeatures);
        Options = options;
        Rank = options.Rank;
        Scale = options.ScaleFor(Rank);
        _active = new bool[Rank];
        Array.Fill(_active, true);
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)(seed ?? options.Seed));
        using (Tensor q = torch.randn([Rank, InFeatures], ScalarType.Float32, generator: generator))
        using (Tensor p = torch.randn([OutFeatures, Rank], ScalarType.Float32, generator: generator))
        {
            register_parameter("lora_A", new Parameter(q * 0.02, requires_grad: true));
            register_parameter("lora_B", new Parameter(p * 0.02, requires_grad: true));
        }

        register_parameter("lora_E", new Parameter(torch.zeros(Rank, 1), requires_grad: true));
    }

    /// <inheritdoc/>
    public override LoraOptions Options { get; }

    /// <summary>The initial rank r (masked triplets still occupy their slot).</summary>
    public int Rank { get; }

    /// <summary>The scale s = α/r (α/√r with rsLoRA).</summary>
    public double Scale { get; }

    /// <summary>P, [out, r] (PEFT's <c>lora_B</c>).</summary>
    public Parameter P => _p;

    /// <summary>λ, [r, 1] (PEFT's <c>lora_E</c>).</summary>
    public Parameter Lambda => _lambda;

    /// <summary>Q, [r, in] (PEFT's <c>lora_A</c>).</summary>
    public Parameter Q => _q;

    /// <summary>Which triplets the allocator keeps (all at first).</summary>
    public IReadOnlyList<bool> ActiveTriplets => _active;

    /// <summary>The number of triplets kept: the layer's current rank.</summary>
    public int ActiveRank => Array.FindAll(_active, a => a).Length;

    /// <summary>‖PᵀP − I‖²_F + ‖QQᵀ − I‖²_F, differentiable; add it (weighted) to the training loss.</summary>
    public Tensor OrthogonalityPenalty()
    {
        using var scope = NewDisposeScope();
        using Tensor identity = torch.eye(Rank);
        Tensor pp = _p.t().matmul(_p) - identity;
        Tensor qq = _q.matmul(_q.t()) - identity;
        return (pp.pow(2).sum() + qq.pow(2).sum()).MoveToOuterDisposeScope();
    }

    /// <summary>Sets which triplets are kept and zeroes the λ of the others (the allocator calls this after each step,
    /// since the optimiser may move a zeroed λ again).</summary>
    internal void ApplyMask(bool[] active)
    {
        Array.Copy(active, _active, Rank);
        using var noGrad = torch.no_grad();
        using Tensor keep = torch.tensor(active).unsqueeze(1);
        using Tensor drop = keep.logical_not();
        _lambda.masked_fill_(drop, 0);
    }

    /// <inheritdoc/>
    protected override Tensor AdaptedForward(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor x = Options.Dropout > 0 ? nn.functional.dropout(input, Options.Dropout, training) : input;
        Tensor update = nn.functional.linear(nn.functional.linear(x, _q * _lambda), _p) * Scale;
        return (BaseLayer.call(input) + update).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override Tensor MergedWeight(Tensor weight)
    {
        using var scope = NewDisposeScope();
        Tensor delta = _p.detach().matmul(_q.detach() * _lambda.detach()) * Scale;
        return (weight + delta).MoveToOuterDisposeScope();
    }

    internal override IEnumerable<(string Name, Tensor Tensor)> AdapterTensors()
    {
        yield return ("lora_A", _q);
        yield return ("lora_B", _p);
        yield return ("lora_E", _lambda);
    }
}
