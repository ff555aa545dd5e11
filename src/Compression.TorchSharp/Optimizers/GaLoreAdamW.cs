// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Optimizers;

/// <summary>
/// AdamW with GaLore gradient low-rank projection (Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient
/// Low-Rank Projection", ICML 2024), optionally with Q-GaLore's INT4 projections and lazy refreshes (Zhang et al.,
/// 2024). A drop-in <see cref="torch.optim.Optimizer"/>: <c>zero_grad()</c>, <c>loss.backward()</c>, <c>step()</c>;
/// learning-rate schedulers drive its parameter groups; <c>state_dict</c>, <c>save_state_dict</c> and
/// <c>load_state_dict</c> round-trip the moments and the projections.
/// </summary>
/// <remarks>
/// For a projected m×n parameter with gradient G at step t, taking the left side (m ≤ n under
/// <see cref="GaLoreProjectionType.Auto"/>):
/// <list type="number">
/// <item>on steps 1, 1 + T, 1 + 2T, … P ← the top-r left singular vectors of G (m×r);</item>
/// <item>R = PᵀG (r×n); M ← β₁M + (1 − β₁)R; V ← β₂V + (1 − β₂)R⊙R (both r×n);</item>
/// <item>N = M̂ / (√V̂ + ε) with M̂ = M/(1 − β₁ᵗ), V̂ = V/(1 − β₂ᵗ);</item>
/// <item>W ← W·(1 − ηλ) − η·α·P·N.</item>
/// </list>
/// On the right side Q (n×r) holds right singular vectors, R = G·Q (m×r) and the update is α·N·Qᵀ. The moments are
/// not reset when P changes, as in the paper. Unprojected parameters take exactly <c>torch.optim.AdamW</c>'s step.
/// <para>Full rank is not AdamW: with r = m and P orthogonal, P·M equals AdamW's first moment, but V is the
/// element-wise square of PᵀG, not a rotation of AdamW's G⊙G, so the normalised update differs.</para>
/// </remarks>
public sealed class GaLoreAdamW : OptimizerHelper
{
    private readonly List<(string Name, Parameter Parameter)> _parameters = [];

    /// <summary>Creates the optimizer over named parameters (e.g. <c>model.named_parameters()</c>).</summary>
    /// <param name="parameters">The parameters to train, each once, with the names <see cref="GaLoreOptions.ProjectParameter"/> sees.</param>
    /// <param name="options">Hyper-parameters; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is outside its range.</exception>
    /// <exception cref="ArgumentException">A parameter is null or listed twice, or one chosen for projection is not
    /// 2-D with min(m, n) ≥ rank.</exception>
    public GaLoreAdamW(IEnumerable<(string name, Parameter parameter)> parameters, GaLoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Options = options ?? new GaLoreOptions();
        Options.Validate();

        var projected = new List<Parameter>();
        var regular = new List<Parameter>();
        foreach ((string name, Parameter parameter) in parameters)
        {
            if (parameter is null)
            {
                throw new ArgumentException($"Parameter '{name}' is null.", nameof(parameters));
            }

            if (_state.ContainsKey(parameter.Handle))
            {
                throw new ArgumentException($"Parameter '{name}' is listed twice; AdamW would update it twice per step.", nameof(parameters));
            }

            int rank = Options.Rank;
            bool project = Options.ProjectParameter is { } choose
                ? choose(name, parameter)
                : parameter.dim() == 2 && Math.Min(parameter.shape[0], parameter.shape[1]) > rank;
            if (project && (parameter.dim() != 2 || Math.Min(parameter.shape[0], parameter.shape[1]) < rank))
            {
                throw new ArgumentException(
                    $"Parameter '{name}' of shape [{string.Join(", ", parameter.shape)}] was chosen for projection, but GaLore projects only 2-D parameters with min(m, n) ≥ rank {rank}.",
                    nameof(parameters));
            }

            GaLoreProjector? projector = project ? CreateProjector(parameter) : null;
            (projector is null ? regular : projected).Add(parameter);
            var state = new GaLoreState(parameter, name, projector);
            state.Initialize(null!);
            _state[parameter.Handle] = state;
            _parameters.Add((name, parameter));
        }

        _defaults = new OptimizerOptions { LearningRate = Options.LearningRate, InitialLearningRate = Options.LearningRate };
        // Two groups, as galore-torch is configured: projected parameters first, the rest second. Both start at the
        // same learning rate; a scheduler may move them apart.
        _parameter_groups =
        [
            new ParamGroup { Parameters = projected, Options = new OptimizerOptions { LearningRate = Options.LearningRate, InitialLearningRate = Options.LearningRate } },
            new ParamGroup { Parameters = regular, Options = new OptimizerOptions { LearningRate = Options.LearningRate, InitialLearningRate = Options.LearningRate } },
        ];
    }

    /// <summary>The hyper-parameters.</summary>
    public GaLoreOptions Options { get; }

    /// <summary>The names of the projected parameters, in order.</summary>
    public IReadOnlyList<string> ProjectedParameters =>
        _parameters.Where(p => State(p.Parameter).Projector is not null).Select(p => p.Name).ToArray();

    /// <summary>Performs one optimization step on every parameter that has a gradient.</summary>
    /// <param name="closure">Optionally re-evaluates the model and returns the loss.</param>
    /// <returns>The closure's loss, or null.</returns>
    public override Tensor step(Func<Tensor>? closure = null) =>
        _step<ParamGroup>(group =>
        {
            double lr = group.LearningRate;
            foreach (Parameter parameter in group.Parameters)
            {
                Tensor? gradient = parameter.grad;
                if (gradient is not null)
                {
                    State(parameter).Step(gradient, lr, Options);
                }
            }
        }, closure);

    /// <summary>Parameter groups are fixed at construction (projected, then unprojected).</summary>
    /// <exception cref="NotSupportedException">Always: pass every parameter to the constructor.</exception>
    public override void add_param_group(ParamGroup param_group) =>
        throw new NotSupportedException("GaLoreAdamW takes its parameters in the constructor, which decides which ones are projected.");

    /// <summary>The optimizer-state bytes held now, next to AdamW's and the paper's figures for the same parameters.</summary>
    public GaLoreMemoryReport MemoryReport() =>
        new(_parameters.Select(p => State(p.Parameter).MemoryRow(Options)).ToArray());

    internal GaLoreProjector? ProjectorOf(Parameter parameter) => State(parameter).Projector;

    internal (long Step, Tensor ExpAvg, Tensor ExpAvgSq) MomentsOf(Parameter parameter)
    {
        GaLoreState state = State(parameter);
        return (state.StepCount, state.ExpAvg, state.ExpAvgSq);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            foreach (var entry in _state)
            {
                ((GaLoreState)entry.Item2).Dispose();
            }
        }
    }

    private GaLoreState State(Parameter parameter) => (GaLoreState)_state[parameter.Handle];

    private GaLoreProjector CreateProjector(Parameter parameter)
    {
        long m = parameter.shape[0], n = parameter.shape[1];
        bool left = Options.ProjectionType switch
        {
            GaLoreProjectionType.Left => true,
            GaLoreProjectionType.Right => false,
            _ => m <= n,
        };
        // Each parameter draws its own randomized-SVD stream: the seed mixed with its position in the list.
        long seed = unchecked(Options.Seed * -7046029254386353131L + _parameters.Count * 1609587929392839161L);
        return new GaLoreProjector(left, Options.Rank, Options.UpdateProjectionGap, Options.SvdMethod, seed, Options.Quantization);
    }
}
