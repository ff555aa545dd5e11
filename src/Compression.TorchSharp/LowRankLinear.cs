// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.LowRank;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>
/// A linear layer factorised as two: y = (x·Bᵀ)·Aᵀ + b with B = [rank, in] (<see cref="Down"/>) and A = [out, rank]
/// (<see cref="Up"/>), holding (in + out)·rank weights instead of in·out. Both factors are ordinary trainable
/// parameters, so the factorised model can be fine-tuned or distilled afterwards.
/// </summary>
public sealed class LowRankLinear : nn.Module<Tensor, Tensor>
{
    private readonly Linear _down;
    private readonly Linear _up;

    /// <summary>Builds the layer from stored factors and an optional bias [out] (copied).</summary>
    /// <exception cref="ArgumentException">The bias does not have one value per output.</exception>
    public LowRankLinear(LowRankTensor weight, Tensor? bias = null)
        : base(nameof(LowRankLinear))
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (bias is not null && (bias.ndim != 1 || bias.shape[0] != weight.Rows))
        {
            throw new ArgumentException($"The bias has shape [{string.Join(", ", bias.shape)}]; [{weight.Rows}] expected.", nameof(bias));
        }

        Rank = weight.Rank;
        _down = nn.Linear(weight.Columns, weight.Rank, hasBias: false);
        _up = nn.Linear(weight.Rank, weight.Rows, hasBias: bias is not null);
        using (no_grad())
        {
            using Tensor right = weight.Right.ToTorchTensor();
            using Tensor left = weight.Left.ToTorchTensor();
            _down.weight!.copy_(right);
            _up.weight!.copy_(left);
            if (bias is not null)
            {
                _up.bias!.copy_(bias);
            }
        }

        register_module("down", _down);
        register_module("up", _up);
    }

    /// <summary>The inner dimension r.</summary>
    public int Rank { get; }

    /// <summary>x ↦ x·Bᵀ: the input projection to the rank-r space.</summary>
    public Linear Down => _down;

    /// <summary>z ↦ z·Aᵀ + b: the output projection (carries the bias).</summary>
    public Linear Up => _up;

    /// <summary>Input features.</summary>
    public long InFeatures => _down.in_features;

    /// <summary>Output features.</summary>
    public long OutFeatures => _up.out_features;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using Tensor projected = _down.call(input);
        return _up.call(projected);
    }
}
