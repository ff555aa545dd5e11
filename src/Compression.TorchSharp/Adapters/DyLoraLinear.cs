// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Adapters;

/// <summary>
/// DyLoRA (Valipour et al., "DyLoRA: Parameter-Efficient Tuning of Pre-trained Models using Dynamic Search-Free Low-Rank
/// Adaptation", EACL 2023): one A [r, in], B [out, r] trained so that every leading block is a usable adapter. Each
/// training forward pass samples a rank b uniformly in 1..r and uses A[:b], B[:, :b] with scale α/b; at inference
/// <see cref="ActiveRank"/> picks any b ≤ r without retraining.
/// </summary>
/// <remarks>
/// The truncated adapter at rank b is exactly a <see cref="LoraLinear"/> of rank b and the same α holding the leading
/// rows of A and columns of B, which is also how it is saved (<see cref="Lora.Save"/> writes a plain LoRA at the active
/// rank). All of A[:b], B[:, :b] receive gradients (the paper's default; its "frozen" variant updates only row b).
/// </remarks>
public sealed class DyLoraLinear : AdapterLinear
{
    private Parameter _a => RegisteredParameter("lora_A");
    private Parameter _b => RegisteredParameter("lora_B");
    private readonly Random _sampler;

    /// <summary>Wraps <paramref name="baseLayer"/> with nested adapters up to rank <see cref="LoraOptions.Rank"/>.</summary>
    /// <exception cref="ArgumentException">The rank exceeds min(in, out), or the base is not linear.</exception>
    public DyLoraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, int? seed = null)
        : base(nameof(DyLoraLinear), baseLayer)
    {
        ArgumentNullException.ThrowIfNull(options);
        LoraLinear.CheckRank(options.Rank, InFeatures, OutFeatures);
        Options = options;
        MaxRank = options.Rank;
        ActiveRank = MaxRank;
        _sampler = new Random(seed ?? options.Seed);
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)(seed ?? options.Seed));
        register_parameter("lora_A", new Parameter(KaimingUniform(MaxRank, InFeatures, generator), requires_grad: true));
        register_parameter("lora_B", new Parameter(torch.zeros(OutFeatures, MaxRank), requires_grad: true));
    }

    /// <inheritdoc/>
    public override LoraOptions Options { get; }

    /// <summary>The largest rank r.</summary>
    public int MaxRank { get; }

    /// <summary>The rank used outside training (and by merging and saving), 1..<see cref="MaxRank"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside 1..MaxRank.</exception>
    public int ActiveRank
    {
        get;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(ActiveRank));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxRank, nameof(ActiveRank));
            field = value;
        }
    }

    /// <summary>The rank the last training forward pass sampled (0 before any).</summary>
    public int LastSampledRank { get; private set; }

    /// <summary>A, [r, in].</summary>
    public Parameter LoraA => _a;

    /// <summary>B, [out, r].</summary>
    public Parameter LoraB => _b;

    /// <summary>The scale at rank <paramref name="rank"/>: α/b (α/√b with rsLoRA).</summary>
    public double ScaleAt(int rank) => Options.ScaleFor(rank);

    /// <inheritdoc/>
    protected override Tensor AdaptedForward(Tensor input)
    {
        int rank = ActiveRank;
        if (training)
        {
            // Seeded per layer, so a run is reproducible; uniform over 1..r as in the paper.
            rank = LastSampledRank = _sampler.Next(1, MaxRank + 1);
        }

        using var scope = NewDisposeScope();
        Tensor x = Options.Dropout > 0 ? nn.functional.dropout(input, Options.Dropout, training) : input;
        Tensor update = nn.functional.linear(nn.functional.linear(x, _a.narrow(0, 0, rank)), _b.narrow(1, 0, rank)) * ScaleAt(rank);
        return (BaseLayer.call(input) + update).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override Tensor MergedWeight(Tensor weight)
    {
        using var scope = NewDisposeScope();
        Tensor delta = _b.detach().narrow(1, 0, ActiveRank).matmul(_a.detach().narrow(0, 0, ActiveRank)) * ScaleAt(ActiveRank);
        return (weight + delta).MoveToOuterDisposeScope();
    }

    internal override IEnumerable<(string Name, Tensor Tensor)> AdapterTensors()
    {
        yield return ("lora_A.weight", _a.narrow(0, 0, ActiveRank));
        yield return ("lora_B.weight", _b.narrow(1, 0, ActiveRank));
    }
}
