// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using Compression.TorchSharp.Distillation;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression;

/// <summary>
/// Trains a student language model to match a frozen teacher (knowledge distillation: Hinton, Vinyals and Dean,
/// "Distilling the Knowledge in a Neural Network", 2015), in particular a compressed model (quantized, pruned,
/// factorised or adapted) from the original it was made from, updating only the parts its compression left continuous.
/// </summary>
/// <remarks>
/// <para>Each step draws <see cref="DistillerOptions.GradientAccumulationSteps"/> batches of token ids [batch, time];
/// the models read ids 0 … time − 2 and the labels are ids 1 … time − 1 (the next token at every position). The
/// teacher runs in evaluation mode without gradients; the student in training mode; the objective
/// (<see cref="DistillationLoss"/>) is backpropagated into the selected parts (<see cref="DistillerOptions.Trainable"/>).
/// Then pruned entries' gradients are zeroed, the global gradient norm is clipped, the learning rate of the step is set
/// and the optimizer steps; pruned entries are set to zero again.</para>
/// <para>Mixed precision: TorchSharp 0.107 has no autocast and no gradient scaler, so nothing is cast behind the user's
/// back: each model runs in the dtype of its parameters, the optimizer keeps its state in the student's dtype (float32
/// master weights), and a teacher whose outputs come in another dtype or on another device has them converted to the
/// student's before the loss (a teacher on another device receives its own copy of each batch).</para>
/// <para>Determinism: on the CPU a run is a function of the options, the batches and the models; a run resumed from a
/// checkpoint takes the same steps on the same batches with the same rates and optimizer state, so its losses and final
/// weights equal an uninterrupted run's exactly.</para>
/// </remarks>
/// <example>
/// <code>
/// using CausalLanguageModel teacher = HuggingFaceModels.Load(folder);
/// using CausalLanguageModel student = HuggingFaceModels.Load(folder);
/// QuantizationReport quantized = Quantizer.Apply(student, QuantizerOptions.W4A16);
/// Quantizer.Pack(student, quantized);                        // QuantizedLinear layers: codes + trainable scales
/// IEnumerable&lt;Tensor&gt; batches = DistillationData.RandomWindows(trainTokens, window: 129, batchSize: 8, seed: 0);
/// DistillationReport report = Distiller.Train(teacher, student, batches,
///     new DistillerOptions { Steps = 200, LearningRate = 1e-3, Trainable = TrainableParts.QuantizationScales });
/// </code>
/// </example>
public static class Distiller
{
    /// <summary>Distils <paramref name="teacher"/> into <paramref name="student"/> in place.</summary>
    /// <param name="teacher">The frozen model; never modified (its mode and <c>requires_grad</c> flags are restored).</param>
    /// <param name="student">The model trained; on return (or cancellation) its trained quantization scales are committed,
    /// pruned entries are zero, and its mode and <c>requires_grad</c> flags are as they were.</param>
    /// <param name="batches">Token ids [batch, time ≥ 2] (int64). Enumerated again from the start when it runs out
    /// (epochs); a resumed run skips the batches its checkpoint consumed, so the sequence must repeat when enumerated
    /// again (<see cref="DistillationData.RandomWindows"/> does). Tensors created while the enumerator moves are
    /// disposed after their step; tensors that already existed are left to their owner.</param>
    /// <param name="options">Objective, optimizer, schedule, trainable parts, checkpoints, evaluation.</param>
    /// <param name="progress">Receives one report per optimizer step.</param>
    /// <param name="cancellationToken">Checked between steps. On cancellation the student is left consistent (as on
    /// return) and the checkpoints written so far are intact; <see cref="OperationCanceledException"/> is thrown.</param>
    /// <returns>The loss history, evaluations and what was trained.</returns>
    /// <exception cref="ArgumentException">The teacher and the student are the same object or share a trained
    /// parameter, their vocabularies differ (<paramref name="student"/>); <paramref name="batches"/> yields nothing, or a
    /// batch is not int64 [batch, time] with 2 ≤ time ≤ context + 1 and ids inside the vocabulary; nothing of the student
    /// falls in the trainable parts, or a checkpoint lies beyond <see cref="DistillerOptions.Steps"/>
    /// (<paramref name="options"/>); the objective does not fit the models (see <see cref="DistillationLoss"/>).</exception>
    /// <exception cref="InvalidDataException">The checkpoint to resume from was written for other trainable tensors or
    /// another optimizer.</exception>
    public static DistillationReport Train(CausalLanguageModel teacher, CausalLanguageModel student, IEnumerable<Tensor> batches,
        DistillerOptions options, IProgress<DistillationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(options);
        if (ReferenceEquals(teacher, student))
        {
            throw new ArgumentException("The teacher and the student are the same model; distil into a separate copy (load the model twice).", nameof(student));
        }

        if (student.VocabularySize != teacher.VocabularySize)
        {
            throw new ArgumentException(
                $"The student's vocabulary has {student.VocabularySize} tokens and the teacher's {teacher.VocabularySize}: distillation needs the same vocabulary.",
                nameof(student));
        }

        var clock = Stopwatch.StartNew();
        Device device = DeviceOf(student);
        Device teacherDevice = DeviceOf(teacher);
        int context = Math.Min(student.ContextLength, teacher.ContextLength);
        using var stream = new BatchStream(batches, student.VocabularySize, context);
        stream.CheckNotEmpty();

        // The objective's learned projections (if any) draw their initial values from the global generator.
        torch.random.manual_seed(options.Seed);
        using var loss = new DistillationLoss(options.Objective, student, teacher);
        TrainableParts parts = StudentTraining.Resolve(student, options.Trainable);
        bool teacherWasTraining = teacher.training;
        var teacherFlags = teacher.parameters().Select(p => (Parameter: p, p.requires_grad)).ToArray();
        using StudentTraining training = StudentTraining.Begin(student, parts, device);
        try
        {
            var teacherHandles = teacherFlags.Select(f => f.Parameter.Handle).ToHashSet();
            if (training.Parameters.FirstOrDefault(p => teacherHandles.Contains(p.Parameter.Handle)) is { Name: not null } shared)
            {
                throw new ArgumentException($"The student's trained parameter '{shared.Name}' is also the teacher's: give the student its own copy.", nameof(student));
            }

            foreach ((Parameter parameter, _) in teacherFlags)
            {
                parameter.requires_grad = false;
            }

            teacher.eval();
            return Run(teacher, student, stream, options, loss, training, teacherDevice, device, progress, clock, cancellationToken);
        }
        finally
        {
            training.End();
            foreach ((Parameter parameter, bool requiresGrad) in teacherFlags)
            {
                parameter.requires_grad = requiresGrad;
            }

            teacher.train(teacherWasTraining);
        }
    }

    private static DistillationReport Run(CausalLanguageModel teacher, CausalLanguageModel student, BatchStream stream, DistillerOptions options,
        DistillationLoss loss, StudentTraining training, Device teacherDevice, Device device, IProgress<DistillationProgress>? progress,
        Stopwatch clock, CancellationToken cancellationToken)
    {
        var trainable = training.Parameters.Concat(loss.named_parameters().Select(p => ("loss." + p.name, p.parameter))).ToList();
        using OptimizerHelper optimizer = options.Optimizer?.Invoke(trainable) ?? DefaultOptimizer(trainable, options);
        var history = new List<DistillationStepResult>();
        var evaluations = new List<DistillationEvaluation>();
        int start = 0;
        string? directory = options.CheckpointDirectory;
        if (directory is not null)
        {
            string? latest = options.Resume ? DistillationCheckpoint.Latest(directory) : null;
            if (latest is not null)
            {
                DistillationCheckpoint.State state = DistillationCheckpoint.Read(latest, trainable, optimizer, options.Steps);
                (start, history, evaluations) = (state.Step, state.History, state.Evaluations);
                training.ApplyMasks();
            }
            else if (!options.Resume)
            {
                DistillationCheckpoint.DeleteAll(directory);
            }
        }

        stream.Skip((long)start * options.GradientAccumulationSteps);
        if (start == 0 && options.Evaluation is not null)
        {
            evaluations.Add(new DistillationEvaluation(0, Evaluate(student, options.Evaluation)));
        }

        student.train();
        for (int step = start; step < options.Steps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            DistillationStepResult result = Step(teacher, student, stream, options, loss, training, optimizer, trainable, teacherDevice, device, step);
            history.Add(result);
            int taken = step + 1;
            DistillationEvaluation? evaluation = null;
            if (options.Evaluation is not null && options.EvaluateEvery > 0 && taken % options.EvaluateEvery == 0 && taken < options.Steps)
            {
                evaluation = new DistillationEvaluation(taken, Evaluate(student, options.Evaluation));
                evaluations.Add(evaluation);
            }

            if (directory is not null && (taken == options.Steps || (options.CheckpointEvery > 0 && taken % options.CheckpointEvery == 0)))
            {
                DistillationCheckpoint.Write(directory, taken, trainable, optimizer, history, evaluations, options.KeepCheckpoints);
            }

            progress?.Report(new DistillationProgress(taken, options.Steps, result, evaluation, clock.Elapsed));
        }

        training.End();
        if (options.Evaluation is not null && !evaluations.Any(e => e.Step == options.Steps))
        {
            evaluations.Add(new DistillationEvaluation(options.Steps, Evaluate(student, options.Evaluation)));
        }

        return new DistillationReport(history, evaluations, training.Parts, training.ValueCount + loss.parameters().Sum(p => p.numel()), start, clock.Elapsed);
    }

    /// <summary>One optimizer step: accumulate the micro-batches' gradients, mask, clip, set the rate, step, re-mask.</summary>
    private static DistillationStepResult Step(CausalLanguageModel teacher, CausalLanguageModel student, BatchStream stream, DistillerOptions options,
        DistillationLoss loss, StudentTraining training, OptimizerHelper optimizer, List<(string Name, Parameter Parameter)> trainable,
        Device teacherDevice, Device device, int step)
    {
        // Anything random in the forward pass (dropout) draws from a generator seeded by (seed, step) alone, so a resumed
        // run repeats it.
        torch.random.manual_seed(((long)options.Seed << 32) ^ step);
        double rate = options.LearningRate * options.Schedule.Multiplier(step, options.Steps);
        foreach (optim.ILearningRateController group in optimizer.ParamGroups)
        {
            group.LearningRate = rate;
        }

        optimizer.zero_grad();
        int micro = options.GradientAccumulationSteps;
        double total = 0, logit = 0, label = 0, hidden = 0, attention = 0;
        DistillationObjective objective = options.Objective;
        ScalarType dtype = student.parameters().FirstOrDefault()?.dtype ?? ScalarType.Float32;
        for (int m = 0; m < micro; m++)
        {
            using var scope = NewDisposeScope();
            Tensor batch = stream.Next();
            long time = batch.shape[1];
            Tensor input = batch.narrow(1, 0, time - 1).to(device);
            Tensor labels = batch.narrow(1, 1, time - 1).to(device);
            using ModelOutputs taught = objective.NeedsTeacher ? RunTeacher(teacher, input, objective, teacherDevice, device, dtype) : new ModelOutputs(torch.empty(0));
            using ModelOutputs learned = student.Run(input, objective.StudentCapture);
            DistillationLossTerms terms = loss.Compute(learned, taught, labels);
            using Tensor scaled = terms.Total / micro;
            scaled.backward();
            total += terms.Total.ToDouble() / micro;
            (logit, label, hidden, attention) = (logit + terms.Logit / micro, label + terms.Label / micro, hidden + terms.Hidden / micro, attention + terms.Attention / micro);
            terms.Total.Dispose();
        }

        training.MaskGradients();
        double norm = ClipGradients(trainable, options.MaxGradientNorm);
        optimizer.step();
        training.ApplyMasks();
        return new DistillationStepResult(step + 1, rate, total, logit, label, hidden, attention, norm);
    }

    /// <summary>The teacher's outputs on the student's device and in the student's dtype (a bfloat16 teacher's logits
    /// are widened, exactly, for the loss).</summary>
    private static ModelOutputs RunTeacher(CausalLanguageModel teacher, Tensor input, DistillationObjective objective, Device teacherDevice, Device device,
        ScalarType dtype)
    {
        using var noGrad = torch.no_grad();
        bool sameDevice = teacherDevice.type == device.type && teacherDevice.index == device.index;
        using Tensor there = sameDevice ? input.alias() : input.to(teacherDevice);
        ModelOutputs outputs = teacher.Run(there, objective.TeacherCapture);
        if (sameDevice && outputs.Logits.dtype == dtype)
        {
            return outputs;
        }

        using (outputs)
        {
            return new ModelOutputs(outputs.Logits.to(dtype, device), outputs.HiddenStates.Select(h => h.to(dtype, device)).ToArray(),
                outputs.Attentions.Select(a => a.to(dtype, device)).ToArray());
        }
    }

    /// <summary>The global L2 norm of the gradients (accumulated in float64: a sum over millions of squares), and the
    /// gradients scaled by max/(norm + 1e-6) when it exceeds <paramref name="max"/>, as torch's <c>clip_grad_norm_</c>.</summary>
    private static double ClipGradients(List<(string Name, Parameter Parameter)> trainable, double? max)
    {
        using var noGrad = torch.no_grad();
        double squares = 0;
        foreach ((_, Parameter parameter) in trainable)
        {
            using Tensor? gradient = parameter.grad;
            if (gradient is not null)
            {
                using Tensor wide = gradient.to(ScalarType.Float64);
                using Tensor sum = wide.square().sum();
                squares += sum.ToDouble();
            }
        }

        double norm = Math.Sqrt(squares);
        if (max is double limit && norm > limit)
        {
            double factor = limit / (norm + 1e-6);
            foreach ((_, Parameter parameter) in trainable)
            {
                using Tensor? gradient = parameter.grad;
                gradient?.mul_(factor);
            }
        }

        return norm;
    }

    private static OptimizerHelper DefaultOptimizer(List<(string Name, Parameter Parameter)> trainable, DistillerOptions options)
    {
        // Decay matrices only (nanoGPT, Hugging Face): decaying scales, norms or biases towards zero has no regularising
        // meaning and would shrink quantization scales.
        Parameter[] matrices = trainable.Where(t => t.Parameter.dim() >= 2).Select(t => t.Parameter).ToArray();
        Parameter[] others = trainable.Where(t => t.Parameter.dim() < 2).Select(t => t.Parameter).ToArray();
        var groups = new List<AdamW.ParamGroup>();
        if (matrices.Length > 0)
        {
            groups.Add(new AdamW.ParamGroup(matrices, new AdamW.Options { weight_decay = options.WeightDecay }));
        }

        if (others.Length > 0)
        {
            groups.Add(new AdamW.ParamGroup(others, new AdamW.Options { weight_decay = 0 }));
        }

        return new AdamW(groups, lr: options.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: options.WeightDecay);
    }

    /// <summary>The callback's value on the student in evaluation mode without gradients; the mode is restored.</summary>
    private static double Evaluate(CausalLanguageModel student, Func<CausalLanguageModel, double> evaluation)
    {
        bool wasTraining = student.training;
        student.eval();
        try
        {
            using var noGrad = torch.no_grad();
            return evaluation(student);
        }
        finally
        {
            student.train(wasTraining);
        }
    }

    private static Device DeviceOf(CausalLanguageModel model) =>
        model.parameters().FirstOrDefault()?.device ?? torch.CPU;
}
