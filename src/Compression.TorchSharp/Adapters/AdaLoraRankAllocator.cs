// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Adapters;

/// <summary>
/// AdaLoRA's global rank budget (Zhang et al., "Adaptive Budget Allocation for Parameter-Efficient Fine-Tuning", ICLR
/// 2023, section 3.2–3.3): after each optimiser step it smooths every adapter value's sensitivity, scores each triplet
/// (P[:, i], λᵢ, Q[i, :]) and keeps, across all layers, only the b(t) best, zeroing the λ of the others.
/// </summary>
/// <remarks>
/// <para>For each value w with gradient g: I = |w·g|, Ī ← β₁Ī + (1 − β₁)I, Ū ← β₂Ū + (1 − β₂)|I − Ī|, and its score is
/// Ī·Ū (the smoothed sensitivity times its uncertainty). A triplet's importance is the score of λᵢ plus the mean score
/// of the column P[:, i] and of the row Q[i, :] (the paper's equation 10).</para>
/// <para>Call <see cref="Step"/> once per training step after <c>optimizer.step()</c> and before the gradients are
/// cleared, with t counting from 1; add <see cref="OrthogonalRegularization"/> to the loss before the backward pass.</para>
/// </remarks>
/// <example>
/// <code>
/// Lora.Apply(model, new LoraOptions { Method = AdapterMethod.AdaLora, Rank = 12, AdaLora = new() { TargetRank = 4, TotalSteps = 500 } });
/// var allocator = Lora.CreateRankAllocator(model);
/// for (int t = 1; t &lt;= 500; t++)
/// {
///     using Tensor loss = Loss(model, batch) + allocator.OrthogonalRegularization();
///     loss.backward(); optimizer.step();
///     allocator.Step(t);
///     optimizer.zero_grad();
/// }
/// </code>
/// </example>
public sealed class AdaLoraRankAllocator
{
    private readonly AdaLoraLinear[] _layers;
    private readonly Tensor[][] _mean, _uncertainty;
    private double[][] _scores;
    private bool[][] _active;

    /// <summary>Creates the allocator over <paramref name="layers"/> with <paramref name="options"/>' schedule.</summary>
    /// <exception cref="ArgumentException">No layer, or the target rank exceeds a layer's initial rank, or the warm-ups
    /// leave no step for the budget to fall.</exception>
    public AdaLoraRankAllocator(IEnumerable<AdaLoraLinear> layers, AdaLoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(options);
        _layers = layers.ToArray();
        if (_layers.Length == 0)
        {
            throw new ArgumentException("AdaLoRA needs at least one AdaLoraLinear layer.", nameof(layers));
        }

        options.Validate();
        if (_layers.Any(l => l.Rank < options.TargetRank))
        {
            throw new ArgumentException($"The target rank {options.TargetRank} exceeds a layer's initial rank {_layers.Min(l => l.Rank)}.", nameof(options));
        }

        Options = options;
        InitialBudget = _layers.Sum(l => l.Rank);
        TargetBudget = options.TargetRank * _layers.Length;
        CurrentBudget = InitialBudget;
        using var noGrad = torch.no_grad();
        _mean = _layers.Select(l => Tracked(l).Select(t => torch.zeros_like(t)).ToArray()).ToArray();
        _uncertainty = _layers.Select(l => Tracked(l).Select(t => torch.zeros_like(t)).ToArray()).ToArray();
        _scores = _layers.Select(l => new double[l.Rank]).ToArray();
        _active = _layers.Select(l => Enumerable.Repeat(true, l.Rank).ToArray()).ToArray();
    }

    /// <summary>The schedule.</summary>
    public AdaLoraOptions Options { get; }

    /// <summary>The layers, in the order of <see cref="Scores"/>.</summary>
    public IReadOnlyList<AdaLoraLinear> Layers => _layers;

    /// <summary>b₀: the sum of the initial ranks.</summary>
    public int InitialBudget { get; }

    /// <summary>b_T: the target rank times the number of layers.</summary>
    public int TargetBudget { get; }

    /// <summary>The budget of the last mask computed.</summary>
    public int CurrentBudget { get; private set; }

    /// <summary>Each layer's triplet importances as of the last update (the update at T − t_f feeds the final mask).</summary>
    public IReadOnlyList<IReadOnlyList<double>> Scores => _scores;

    /// <summary>The total budget at step <paramref name="step"/> (from 1): b₀ up to t_i, then
    /// b_T + (b₀ − b_T)·(1 − (t − t_i)/(T − t_i − t_f))³ rounded down, then b_T from T − t_f on.</summary>
    public int Budget(int step)
    {
        int ti = Options.InitialWarmup, tf = Options.FinalWarmup, total = Options.TotalSteps;
        if (step <= ti)
        {
            return InitialBudget;
        }

        if (step >= total - tf)
        {
            return TargetBudget;
        }

        double remaining = 1 - (double)(step - ti) / (total - ti - tf);
        return (int)(TargetBudget + (InitialBudget - TargetBudget) * remaining * remaining * remaining);
    }

    /// <summary>γ times the mean over layers of ‖PᵀP − I‖²_F + ‖QQᵀ − I‖²_F (differentiable); add it to the loss.</summary>
    public Tensor OrthogonalRegularization()
    {
        using var scope = torch.NewDisposeScope();
        Tensor sum = _layers[0].OrthogonalityPenalty();
        for (int i = 1; i < _layers.Length; i++)
        {
            sum = sum + _layers[i].OrthogonalityPenalty();
        }

        return (sum * (Options.OrthogonalityWeight / _layers.Length)).MoveToOuterDisposeScope();
    }

    /// <summary>Updates the importances from the current gradients and, on schedule, the mask; then zeroes the masked λ.</summary>
    /// <param name="step">The training step just taken, from 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="step"/> below 1.</exception>
    public void Step(int step)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        int ti = Options.InitialWarmup, budgetEnd = Options.TotalSteps - Options.FinalWarmup;
        using var noGrad = torch.no_grad();
        if (step <= budgetEnd)
        {
            UpdateImportance();
        }

        if (step > ti && step <= budgetEnd && ((step - ti) % Options.MaskInterval == 0 || step == budgetEnd))
        {
            Mask(Budget(step));
        }

        if (step > ti)
        {
            for (int i = 0; i < _layers.Length; i++)
            {
                _layers[i].ApplyMask(_active[i]);
            }
        }
    }

    private static Tensor[] Tracked(AdaLoraLinear layer) => [layer.Lambda, layer.P, layer.Q];

    private void UpdateImportance()
    {
        double beta1 = Options.Beta1, beta2 = Options.Beta2;
        for (int i = 0; i < _layers.Length; i++)
        {
            Tensor[] tracked = Tracked(_layers[i]);
            var perTriplet = new double[_layers[i].Rank];
            for (int j = 0; j < tracked.Length; j++)
            {
                using var scope = torch.NewDisposeScope();
                Tensor? gradient = tracked[j].grad;
                Tensor sensitivity = gradient is null ? torch.zeros_like(tracked[j]) : (tracked[j].detach() * gradient).abs();
                Tensor mean = _mean[i][j], uncertainty = _uncertainty[i][j];
                mean.mul_(beta1).add_(sensitivity, 1 - beta1);
                uncertainty.mul_(beta2).add_((sensitivity - mean).abs(), 1 - beta2);
                // λ is [r, 1], P [out, r] (a triplet is a column), Q [r, in] (a triplet is a row).
                Tensor score = mean * uncertainty;
                Tensor reduced = j switch { 0 => score.squeeze(1), 1 => score.mean([0]), _ => score.mean([1]) };
                double[] values = reduced.to(ScalarType.Float64).data<double>().ToArray();
                for (int k = 0; k < values.Length; k++)
                {
                    perTriplet[k] += values[k];
                }
            }

            _scores[i] = perTriplet;
        }
    }

    /// <summary>Keeps the <paramref name="budget"/> most important triplets across all layers; ties broken by layer then
    /// index, so the count is exact and the result deterministic.</summary>
    private void Mask(int budget)
    {
        var order = new List<(double Score, int Layer, int Index)>(InitialBudget);
        for (int i = 0; i < _layers.Length; i++)
        {
            for (int k = 0; k < _scores[i].Length; k++)
            {
                order.Add((_scores[i][k], i, k));
            }
        }

        order.Sort();
        _active = _layers.Select(l => Enumerable.Repeat(true, l.Rank).ToArray()).ToArray();
        for (int n = 0; n < order.Count - budget; n++)
        {
            _active[order[n].Layer][order[n].Index] = false;
        }

        CurrentBudget = budget;
    }
}
