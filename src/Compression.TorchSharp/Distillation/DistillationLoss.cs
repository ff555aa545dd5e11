// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// A <see cref="DistillationObjective"/> bound to a student and a teacher: checks that the two fit, resolves the layer
/// map, and owns the learned projections (<c>nn.Linear</c> student width → teacher width, no bias, one per mapped
/// pair, TinyBERT's W_h) that the hidden-state term needs when the widths differ. Train its
/// <c>parameters()</c> together with the student's.
/// </summary>
/// <example>
/// <code>
/// using var loss = new DistillationLoss(objective, student, teacher);
/// using var optimizer = torch.optim.AdamW(student.parameters().Concat(loss.parameters()), 1e-4);
/// using ModelOutputs t = WithoutGradient(() => teacher.Run(inputs, objective.TeacherCapture));
/// using ModelOutputs s = student.Run(inputs, objective.StudentCapture);
/// DistillationLossTerms terms = loss.Compute(s, t, labels);
/// terms.Total.backward();
/// </code>
/// </example>
public sealed class DistillationLoss : nn.Module
{
    private readonly (int Student, int Teacher)[] _map;
    private readonly (int Student, int Teacher)[] _attentionMap;
    private readonly Linear[] _projections;
    private readonly int _studentLayers, _teacherLayers;

    /// <summary>Binds <paramref name="objective"/> to the two models (projections, if any, are created on the
    /// student's device, initialised by <c>nn.Linear</c>'s default from the global generator).</summary>
    /// <exception cref="ArgumentException">The vocabularies differ (<paramref name="student"/>); every weight is 0, a
    /// layer-map index is beyond a model's layers, or attention transfer is asked for with no pair of blocks
    /// (<paramref name="objective"/>).</exception>
    public DistillationLoss(DistillationObjective objective, CausalLanguageModel student, CausalLanguageModel teacher)
        : base(nameof(DistillationLoss))
    {
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        objective.Validate(nameof(objective));
        if (student.VocabularySize != teacher.VocabularySize)
        {
            throw new ArgumentException(
                $"The student's vocabulary has {student.VocabularySize} tokens and the teacher's {teacher.VocabularySize}: logit distillation needs the same vocabulary.",
                nameof(student));
        }

        Objective = objective;
        (_studentLayers, _teacherLayers) = (student.LayerCount, teacher.LayerCount);
        _map = objective.LayerMap?.ToArray() ?? DistillationObjective.UniformMap(_studentLayers, _teacherLayers);
        foreach ((int s, int t) in _map)
        {
            if (s > _studentLayers || t > _teacherLayers)
            {
                throw new ArgumentException(
                    $"Layer map pair ({s}, {t}) is out of range: hidden-state indices run to {_studentLayers} for the student and {_teacherLayers} for the teacher (0 = embeddings).",
                    nameof(objective));
            }
        }

        _attentionMap = _map.Where(p => p.Student >= 1 && p.Teacher >= 1).ToArray();
        if (objective.AttentionWeight > 0 && _attentionMap.Length == 0)
        {
            throw new ArgumentException("AttentionWeight > 0 but the layer map pairs no blocks (every pair involves the embeddings, index 0).", nameof(objective));
        }

        _projections = [];
        if (objective.HiddenWeight > 0 && student.HiddenSize != teacher.HiddenSize)
        {
            _projections = _map.Select(_ => nn.Linear(student.HiddenSize, teacher.HiddenSize, hasBias: false)).ToArray();
            register_module("hidden_projections", nn.ModuleList(_projections));
            if (student.parameters().FirstOrDefault() is { } parameter)
            {
                this.to(parameter.device);
            }
        }
    }

    /// <summary>The objective.</summary>
    public DistillationObjective Objective { get; }

    /// <summary>The resolved (student, teacher) hidden-state index pairs (the objective's, or the uniform map).</summary>
    public IReadOnlyList<(int Student, int Teacher)> LayerMap => _map;

    /// <summary>The learned projections, one per <see cref="LayerMap"/> pair; empty when the widths agree or the
    /// hidden term is off.</summary>
    public IReadOnlyList<Linear> HiddenProjections => _projections;

    /// <summary>
    /// Evaluates the objective on one batch. The logit and hidden terms use the positions whose label is not −100;
    /// the teacher's tensors are treated as constants (detached).
    /// </summary>
    /// <param name="student">The student's outputs, with what <see cref="DistillationObjective.StudentCapture"/> asks for.</param>
    /// <param name="teacher">The teacher's outputs on the same inputs, with what <see cref="DistillationObjective.TeacherCapture"/> asks for.</param>
    /// <param name="labels">Next-token ids [batch, time] (int64) aligned with the logits; −100 where a position does not count.</param>
    /// <returns>The weighted total (a scalar tensor the caller disposes) and each term's value.</returns>
    /// <exception cref="ArgumentException">Shapes do not agree, or a needed capture is missing.</exception>
    public DistillationLossTerms Compute(ModelOutputs student, ModelOutputs teacher, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(labels);
        long[] shape = student.Logits.shape;
        if (Objective.NeedsTeacher && !teacher.Logits.shape.SequenceEqual(shape))
        {
            throw new ArgumentException($"The teacher's logits [{string.Join(", ", teacher.Logits.shape)}] do not match the student's [{string.Join(", ", shape)}].", nameof(teacher));
        }

        if (labels.dtype != ScalarType.Int64 || !labels.shape.SequenceEqual(shape[..^1]))
        {
            throw new ArgumentException($"Labels must be int64 [{string.Join(", ", shape[..^1])}]; got {labels.dtype} [{string.Join(", ", labels.shape)}].", nameof(labels));
        }

        if (Objective.HiddenWeight > 0)
        {
            RequireCount(student.HiddenStates.Count, _studentLayers + 1, "hidden states", nameof(student));
            RequireCount(teacher.HiddenStates.Count, _teacherLayers + 1, "hidden states", nameof(teacher));
        }

        if (Objective.AttentionWeight > 0)
        {
            RequireCount(student.Attentions.Count, _studentLayers, "attention maps", nameof(student));
            RequireCount(teacher.Attentions.Count, _teacherLayers, "attention maps", nameof(teacher));
        }

        using var scope = NewDisposeScope();
        Tensor mask = labels.ne(-100);
        var total = new List<Tensor>();
        double Add(double weight, Func<Tensor> term)
        {
            if (weight == 0)
            {
                return 0;
            }

            Tensor value = term();
            total.Add(value * weight);
            return value.ToDouble();
        }

        double logit = Add(Objective.LogitWeight, () =>
        {
            Tensor t = teacher.Logits.detach();
            return Objective.Divergence switch
            {
                Divergence.ReverseKl => DistillationLosses.ReverseKullbackLeibler(student.Logits, t, Objective.Temperature, mask),
                Divergence.JensenShannon => DistillationLosses.JensenShannon(student.Logits, t, Objective.JensenShannonBeta, Objective.Temperature, mask),
                _ => DistillationLosses.KullbackLeibler(student.Logits, t, Objective.Temperature, mask),
            };
        });
        double label = Add(Objective.LabelWeight, () => DistillationLosses.CrossEntropy(student.Logits, labels));
        double hidden = Add(Objective.HiddenWeight, () => Mean(_map.Select((pair, k) =>
        {
            Tensor s = student.HiddenStates[pair.Student], t = teacher.HiddenStates[pair.Teacher].detach();
            if (_projections.Length > 0)
            {
                s = _projections[k].call(s);
            }

            return Objective.HiddenLoss == HiddenStateLoss.Cosine ? DistillationLosses.HiddenCosine(s, t, mask) : DistillationLosses.HiddenMse(s, t, mask);
        })));
        double attention = Add(Objective.AttentionWeight, () => Mean(_attentionMap.Select(pair =>
            DistillationLosses.AttentionTransfer(student.Attentions[pair.Student - 1], teacher.Attentions[pair.Teacher - 1].detach()))));
        Tensor sum = total.Skip(1).Aggregate(total[0], (a, b) => a + b);
        return new DistillationLossTerms(sum.MoveToOuterDisposeScope(), logit, label, hidden, attention);
    }

    private static Tensor Mean(IEnumerable<Tensor> terms)
    {
        Tensor[] all = terms.ToArray();
        return all.Skip(1).Aggregate(all[0], (a, b) => a + b) / all.Length;
    }

    private static void RequireCount(int count, int expected, string what, string parameterName)
    {
        if (count != expected)
        {
            throw new ArgumentException(
                $"Expected {expected} {what} but got {count}: run the model with the objective's capture (StudentCapture / TeacherCapture).", parameterName);
        }
    }
}
