// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// What a student is trained to match, and how much each part counts: the loss
/// L = LogitWeight·D_T(p_T, p_S) + LabelWeight·CE(labels) + HiddenWeight·hidden + AttentionWeight·attention, where
/// D_T is <see cref="Divergence"/> at <see cref="Temperature"/> (multiplied by T²). Immutable; every property validates
/// when set (so <c>with</c> expressions validate too). <see cref="DistillationLoss"/> evaluates it.
/// </summary>
/// <example>
/// <code>
/// // DistilBERT-like: soft targets at T = 2, the hard labels, and the hidden states of mapped layers.
/// var objective = new DistillationObjective { Temperature = 2, LabelWeight = 0.5, HiddenWeight = 1 };
/// // On-policy LM distillation (GKD) with the symmetric Jensen–Shannon divergence:
/// var gkd = new DistillationObjective { Divergence = Divergence.JensenShannon, JensenShannonBeta = 0.5 };
/// </code>
/// </example>
public sealed record DistillationObjective
{
    /// <summary>How the next-token distributions are compared. Default: <see cref="Divergence.ForwardKl"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined value.</exception>
    public Divergence Divergence
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Divergence), value, "Not a defined divergence.");
    } = Divergence.ForwardKl;

    /// <summary>The softmax temperature T of both models' logits in the logit term, finite and &gt; 0. Default 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not finite or not greater than 0.</exception>
    public double Temperature
    {
        get;
        init => field = value > 0 && !double.IsInfinity(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(Temperature), value, "The temperature must be finite and greater than 0.");
    } = 1;

    /// <summary>β of <see cref="Divergence.JensenShannon"/>, in (0, 1): the teacher's share of the mixture. Default 0.5.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside (0, 1) or NaN.</exception>
    public double JensenShannonBeta
    {
        get;
        init => field = value > 0 && value < 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(JensenShannonBeta), value, "β must be in (0, 1).");
    } = 0.5;

    /// <summary>The weight of the soft-target divergence, finite and ≥ 0. Default 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, infinite or NaN.</exception>
    public double LogitWeight { get; init => field = Weight(value, nameof(LogitWeight)); } = 1;

    /// <summary>The weight of the cross-entropy with the hard labels, finite and ≥ 0. Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, infinite or NaN.</exception>
    public double LabelWeight { get; init => field = Weight(value, nameof(LabelWeight)); }

    /// <summary>The weight of the hidden-state loss over <see cref="LayerMap"/>, finite and ≥ 0. Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, infinite or NaN.</exception>
    public double HiddenWeight { get; init => field = Weight(value, nameof(HiddenWeight)); }

    /// <summary>How mapped hidden states are compared. Default: <see cref="HiddenStateLoss.MeanSquaredError"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined value.</exception>
    public HiddenStateLoss HiddenLoss
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(HiddenLoss), value, "Not a defined hidden-state loss.");
    } = HiddenStateLoss.MeanSquaredError;

    /// <summary>
    /// Which student hidden state is compared with which teacher hidden state, as indices into
    /// <see cref="ModelOutputs.HiddenStates"/> (0 = the embeddings' output, i = the output of block i). A pair (s, t)
    /// with s ≥ 1 and t ≥ 1 also pairs attention maps s − 1 and t − 1 for the attention term. Null (the default) maps
    /// uniformly, as TinyBERT does: (i, ⌊i·L_T/L_S⌋) for i = 0 … L_S, so the embeddings match the embeddings and the
    /// last block the last block. Indices are checked against the models by <see cref="DistillationLoss"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Empty, a negative index, or a student index listed twice.</exception>
    public IReadOnlyList<(int Student, int Teacher)>? LayerMap
    {
        get;
        init
        {
            if (value is not null)
            {
                if (value.Count == 0 || value.Any(p => p.Student < 0 || p.Teacher < 0) || value.Select(p => p.Student).Distinct().Count() != value.Count)
                {
                    throw new ArgumentOutOfRangeException(nameof(LayerMap), $"[{string.Join(", ", value)}]",
                        "The layer map needs at least one pair, non-negative indices and each student index at most once.");
                }

                value = value.ToArray();
            }

            field = value;
        }
    }

    /// <summary>The weight of the attention-transfer term, finite and ≥ 0. Default 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, infinite or NaN.</exception>
    public double AttentionWeight { get; init => field = Weight(value, nameof(AttentionWeight)); }

    /// <summary>What the student's <see cref="Models.CausalLanguageModel.Run"/> must capture for this objective.</summary>
    public OutputCapture StudentCapture =>
        (HiddenWeight > 0 ? OutputCapture.HiddenStates : OutputCapture.Logits) | (AttentionWeight > 0 ? OutputCapture.Attentions : OutputCapture.Logits);

    /// <summary>What the teacher's <see cref="Models.CausalLanguageModel.Run"/> must capture for this objective (the
    /// same as <see cref="StudentCapture"/>).</summary>
    public OutputCapture TeacherCapture => StudentCapture;

    /// <summary>Whether the teacher is needed at all (a label-only objective trains on the labels alone).</summary>
    public bool NeedsTeacher => LogitWeight > 0 || HiddenWeight > 0 || AttentionWeight > 0;

    /// <summary>Throws unless at least one weight is positive (the one rule that spans properties).</summary>
    /// <exception cref="ArgumentException">Every weight is 0.</exception>
    internal void Validate(string parameterName)
    {
        if (!(LogitWeight > 0 || LabelWeight > 0 || HiddenWeight > 0 || AttentionWeight > 0))
        {
            throw new ArgumentException("Every weight is 0 (LogitWeight, LabelWeight, HiddenWeight, AttentionWeight): at least one must be positive.", parameterName);
        }
    }

    private static double Weight(double value, string name) =>
        value >= 0 && !double.IsInfinity(value) ? value : throw new ArgumentOutOfRangeException(name, value, "A weight must be finite and ≥ 0.");

    /// <summary>The uniform map (i, ⌊i·teacherLayers/studentLayers⌋), i = 0 … studentLayers.</summary>
    internal static (int Student, int Teacher)[] UniformMap(int studentLayers, int teacherLayers) =>
        Enumerable.Range(0, studentLayers + 1).Select(i => (i, (int)((long)i * teacherLayers / studentLayers))).ToArray();
}
