// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using Compression.TorchSharp.Distillation;
using Compression.TorchSharp.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression;

/// <summary>
/// How <see cref="Distiller"/> trains a student on a teacher: the objective, the optimizer and its schedule, what
/// trains, checkpoints and evaluation. Immutable; every property validates when set (so <c>with</c> validates too).
/// </summary>
/// <example>
/// <code>
/// var options = new DistillerOptions
/// {
///     Objective = new DistillationObjective { Temperature = 2, LabelWeight = 0.5 },
///     Steps = 500, LearningRate = 1e-4,
///     Schedule = new LearningRateSchedule { Decay = LearningRateDecay.Cosine, WarmupSteps = 20 },
///     Trainable = TrainableParts.QuantizationScales,
///     CheckpointDirectory = "runs/int2", CheckpointEvery = 100,
///     Evaluation = student => LanguageModelEvaluator.EvaluateWithBos(student, heldOut, 256, bos: 1).Perplexity,
///     EvaluateEvery = 100,
/// };
/// </code>
/// </example>
public sealed record DistillerOptions
{
    /// <summary>What the student minimises (logit divergence and temperature, label, hidden-state and attention terms).
    /// Default: the objective's defaults.</summary>
    public DistillationObjective Objective
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Objective));
    } = new();

    /// <summary>Optimizer steps in the whole run (a resumed run counts the checkpoint's steps). Default 100.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Less than 1.</exception>
    public int Steps
    {
        get;
        init => field = value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(Steps), value, "A run takes at least 1 step.");
    } = 100;

    /// <summary>The peak learning rate, finite and &gt; 0 (the <see cref="Schedule"/> multiplies it). Default 1e-4.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not finite or not positive.</exception>
    public double LearningRate
    {
        get;
        init => field = double.IsFinite(value) && value > 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(LearningRate), value, "The learning rate must be finite and > 0.");
    } = 1e-4;

    /// <summary>Warm-up and decay of the learning rate. Default: constant.</summary>
    public LearningRateSchedule Schedule
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Schedule));
    } = LearningRateSchedule.Constant;

    /// <summary>AdamW's decoupled weight decay λ, applied to trainable matrices only (parameters of two or more
    /// dimensions: not scales, biases, norms or vectors), as nanoGPT and Hugging Face do. Default 0. Ignored by a custom
    /// <see cref="Optimizer"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative or not finite.</exception>
    public double WeightDecay
    {
        get;
        init => field = double.IsFinite(value) && value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(WeightDecay), value, "The weight decay must be finite and ≥ 0.");
    }

    /// <summary>Clip the global L2 norm of all trainable gradients to this value before each step (null: no clipping).
    /// Default 1, as the Hugging Face Trainer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not finite or not positive.</exception>
    public double? MaxGradientNorm
    {
        get;
        init => field = value is null || (double.IsFinite(value.Value) && value > 0) ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxGradientNorm), value, "The gradient norm limit must be finite and > 0, or null.");
    } = 1.0;

    /// <summary>Batches whose gradients add up before each optimizer step (the loss of each is divided by this count, so
    /// the step equals one on their concatenation when they have equal sizes). Default 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Less than 1.</exception>
    public int GradientAccumulationSteps
    {
        get;
        init => field = value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(GradientAccumulationSteps), value, "Accumulate at least 1 batch per step.");
    } = 1;

    /// <summary>Which parts of the student train. Null (the default) decides from the student: a student with adapters
    /// (<see cref="Lora.Apply"/>) trains <see cref="TrainableParts.Adapters"/> only, as PEFT does; any other trains
    /// <see cref="TrainableParts.QuantizationScales"/> | <see cref="TrainableParts.LowRankFactors"/> |
    /// <see cref="TrainableParts.UnprunedWeights"/>: what recovers a compressed model while its codes, masks and ranks
    /// stay, and the block weights of a dense one. Norms, biases and embeddings train only when asked.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="TrainableParts.None"/> or undefined bits.</exception>
    public TrainableParts? Trainable
    {
        get;
        init => field = value is null || (value != TrainableParts.None && (value & ~TrainableParts.All) == 0) ? value
            : throw new ArgumentOutOfRangeException(nameof(Trainable), value, "Select at least one part to train (and only the defined parts).");
    }

    /// <summary>Builds the optimizer from the trainable parameters (with their names: the student's parameter names,
    /// <c>&lt;layer&gt;.weight_scale</c> for trained quantization scales, <c>loss.&lt;name&gt;</c> for the objective's
    /// projections). Its state must round-trip through <c>save_state_dict</c>/<c>load_state_dict</c> for checkpoints
    /// (TorchSharp's managed optimizers and <see cref="TorchSharp.Optimizers.GaLoreAdamW"/> do). The schedule sets every
    /// parameter group's rate to <see cref="LearningRate"/> × multiplier before each step. Null (the default): AdamW
    /// with β = (0.9, 0.999), ε = 1e-8 and <see cref="WeightDecay"/> on matrices.</summary>
    public Func<IReadOnlyList<(string Name, Parameter Parameter)>, OptimizerHelper>? Optimizer { get; init; }

    /// <summary>Seeds TorchSharp's global generator with it before the objective's projections are created, and with
    /// (seed, step) before every step, so anything random (projection initialisation, dropout) repeats exactly, also in a
    /// resumed run. The global generator is left in the state of the last step; runs repeat exactly only when no other
    /// thread draws from it meanwhile (TorchSharp's dropout has no per-module generator). Default 0.</summary>
    public int Seed { get; init; }

    /// <summary>Where checkpoints go (created if missing); null (the default) for none. A run whose directory holds a
    /// checkpoint resumes from its last one when <see cref="Resume"/> is true.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>Write a checkpoint every this many steps (0: only at the end). Default 0. Needs
    /// <see cref="CheckpointDirectory"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative.</exception>
    public int CheckpointEvery
    {
        get;
        init => field = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(CheckpointEvery), value, "The checkpoint interval must be 0 or more steps.");
    }

    /// <summary>How many of the newest checkpoints to keep (older ones are deleted after a new one is written). Default 2.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Less than 1.</exception>
    public int KeepCheckpoints
    {
        get;
        init => field = value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(KeepCheckpoints), value, "Keep at least 1 checkpoint.");
    } = 2;

    /// <summary>Whether to continue from the last checkpoint in <see cref="CheckpointDirectory"/> (true, the default) or
    /// start afresh (existing checkpoints are then overwritten as the new run reaches their steps).</summary>
    public bool Resume { get; init; } = true;

    /// <summary>Measures the student (e.g. held-out perplexity); called in evaluation mode without gradients before the
    /// first step, every <see cref="EvaluateEvery"/> steps and after the last step (quantization scales committed).
    /// Null (the default) for none.</summary>
    public Func<CausalLanguageModel, double>? Evaluation { get; init; }

    /// <summary>Steps between evaluations (0: only before and after training). Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative.</exception>
    public int EvaluateEvery
    {
        get;
        init => field = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(EvaluateEvery), value, "The evaluation interval must be 0 or more steps.");
    }
}
