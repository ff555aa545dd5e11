// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// The losses of knowledge distillation as differentiable TorchSharp functions, each returning a scalar tensor in the
/// inputs' dtype (float32 or float64) that the caller disposes. They compose by ordinary tensor arithmetic;
/// <see cref="DistillationLoss"/> mixes them as a <see cref="DistillationObjective"/> says.
/// </summary>
/// <remarks>
/// <para>Logit losses take logits [..., vocabulary] and reduce to the mean over positions (every index but the last),
/// or over the positions where the optional boolean <c>mask</c> (the logits' shape without the vocabulary) is true; a
/// mask with no true entry gives 0. With p = softmax(z/T), each is multiplied by T² (Hinton et al., "Distilling the
/// Knowledge in a Neural Network", 2015) so that the gradient keeps its size as T changes: for the forward KL the
/// gradient with respect to the student logits is exactly (p_S − p_T)·T per position (divided by the number of
/// positions).</para>
/// <para>All are computed from log-probabilities (<c>log_softmax</c>, <c>logsumexp</c>), so logits of any finite
/// magnitude are safe; logits must be finite.</para>
/// </remarks>
public static class DistillationLosses
{
    /// <summary>
    /// The soft-target loss T²·KL(p_T ‖ p_S) = T²·Σ_v p_T(v)·(log p_T(v) − log p_S(v)), p = softmax(logits / T),
    /// averaged over positions.
    /// </summary>
    /// <param name="studentLogits">Student logits [..., vocabulary].</param>
    /// <param name="teacherLogits">Teacher logits of the same shape (usually computed without gradient).</param>
    /// <param name="temperature">T &gt; 0: above 1 softens both distributions, exposing the teacher's ranking of unlikely tokens.</param>
    /// <param name="mask">Optional boolean [...]: the positions that count.</param>
    /// <exception cref="ArgumentException">Shapes differ (e.g. the vocabularies), or the mask does not fit.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="temperature"/> is not finite and positive.</exception>
    public static Tensor KullbackLeibler(Tensor studentLogits, Tensor teacherLogits, double temperature = 1, Tensor? mask = null)
    {
        CheckLogits(studentLogits, teacherLogits, temperature, mask);
        using var scope = NewDisposeScope();
        (Tensor student, Tensor teacher) = LogProbabilities(studentLogits, teacherLogits, temperature);
        Tensor perPosition = (teacher.exp() * (teacher - student)).sum(-1);
        return (MaskedMean(perPosition, mask) * (temperature * temperature)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The reverse divergence T²·KL(p_S ‖ p_T) = T²·Σ_v p_S(v)·(log p_S(v) − log p_T(v)), averaged over positions
    /// (mode-seeking: MiniLLM, Gu et al. 2024).
    /// </summary>
    /// <inheritdoc cref="KullbackLeibler" path="/param"/>
    /// <inheritdoc cref="KullbackLeibler" path="/exception"/>
    public static Tensor ReverseKullbackLeibler(Tensor studentLogits, Tensor teacherLogits, double temperature = 1, Tensor? mask = null)
    {
        CheckLogits(studentLogits, teacherLogits, temperature, mask);
        using var scope = NewDisposeScope();
        (Tensor student, Tensor teacher) = LogProbabilities(studentLogits, teacherLogits, temperature);
        Tensor perPosition = (student.exp() * (student - teacher)).sum(-1);
        return (MaskedMean(perPosition, mask) * (temperature * temperature)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The generalised Jensen–Shannon divergence of GKD (Agarwal et al., "On-Policy Distillation of Language Models:
    /// Learning from Self-Generated Mistakes", ICLR 2024), times T² and averaged over positions:
    /// JSD(β) = β·KL(p_T ‖ m) + (1 − β)·KL(p_S ‖ m) with the mixture m = β·p_T + (1 − β)·p_S.
    /// </summary>
    /// <remarks>
    /// This is the paper's convention (and TRL's <c>generalized_jsd_loss</c>): as β → 0, JSD(β)/β → KL(p_T ‖ p_S), the
    /// forward KL; as β → 1, JSD(β)/(1 − β) → KL(p_S ‖ p_T), the reverse KL. At β = 0.5 it is the symmetric
    /// Jensen–Shannon divergence, at most ln 2 (times T²); in general it is at most the binary entropy h(β).
    /// log m is computed as logsumexp(log β + log p_T, log(1 − β) + log p_S), so it never underflows.
    /// </remarks>
    /// <param name="studentLogits">Student logits [..., vocabulary].</param>
    /// <param name="teacherLogits">Teacher logits of the same shape.</param>
    /// <param name="beta">β in (0, 1): the teacher's share of the mixture and of the sum.</param>
    /// <param name="temperature">T &gt; 0.</param>
    /// <param name="mask">Optional boolean [...]: the positions that count.</param>
    /// <exception cref="ArgumentException">Shapes differ (e.g. the vocabularies), or the mask does not fit.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="temperature"/> is not finite and positive, or
    /// <paramref name="beta"/> is outside (0, 1).</exception>
    public static Tensor JensenShannon(Tensor studentLogits, Tensor teacherLogits, double beta = 0.5, double temperature = 1, Tensor? mask = null)
    {
        if (!(beta > 0 && beta < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(beta), beta, "β must be in (0, 1); use KullbackLeibler or ReverseKullbackLeibler for the limits.");
        }

        CheckLogits(studentLogits, teacherLogits, temperature, mask);
        using var scope = NewDisposeScope();
        (Tensor student, Tensor teacher) = LogProbabilities(studentLogits, teacherLogits, temperature);
        Tensor mixture = torch.logaddexp(teacher + Math.Log(beta), student + Math.Log(1 - beta));
        Tensor perPosition = beta * (teacher.exp() * (teacher - mixture)).sum(-1) + (1 - beta) * (student.exp() * (student - mixture)).sum(-1);
        return (MaskedMean(perPosition, mask) * (temperature * temperature)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The hard-label loss: mean over the positions whose label is not <paramref name="ignoreIndex"/> of
    /// −log softmax(logits)[label], in nats (0 when every label is ignored).
    /// </summary>
    /// <param name="logits">Logits [..., vocabulary].</param>
    /// <param name="labels">int64 labels [...] (the logits' shape without the vocabulary), each in [0, vocabulary) or <paramref name="ignoreIndex"/>.</param>
    /// <param name="ignoreIndex">The label of positions that do not count (Hugging Face's −100).</param>
    /// <exception cref="ArgumentException">The labels' shape or dtype does not fit the logits.</exception>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, long ignoreIndex = -100)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        CheckFloating(logits, nameof(logits));
        if (labels.dtype != ScalarType.Int64 || !labels.shape.SequenceEqual(logits.shape[..^1]))
        {
            throw new ArgumentException($"Labels must be int64 {Shape(logits.shape[..^1])} for logits {Shape(logits.shape)}; got {labels.dtype} {Shape(labels.shape)}.", nameof(labels));
        }

        using var scope = NewDisposeScope();
        Tensor counted = labels.ne(ignoreIndex);
        Tensor safe = torch.where(counted, labels, torch.zeros_like(labels));
        Tensor negativeLogLikelihood = -logits.log_softmax(-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1);
        return MaskedMean(negativeLogLikelihood, counted).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The mean squared error between hidden states [..., hidden]: mean over the hidden dimension of (s − t)², then
    /// over positions (where <paramref name="mask"/> is true). Project the student first when the widths differ.
    /// </summary>
    /// <param name="student">Student hidden states [..., hidden].</param>
    /// <param name="teacher">Teacher hidden states of the same shape.</param>
    /// <param name="mask">Optional boolean [...]: the positions that count.</param>
    /// <exception cref="ArgumentException">Shapes differ, or the mask does not fit.</exception>
    public static Tensor HiddenMse(Tensor student, Tensor teacher, Tensor? mask = null)
    {
        CheckPair(student, teacher, mask, "hidden width", nameof(student), nameof(teacher));
        using var scope = NewDisposeScope();
        return MaskedMean((student - teacher).square().mean([-1]), mask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The cosine loss between hidden states: mean over positions (where <paramref name="mask"/> is true) of
    /// 1 − s·t / max(‖s‖·‖t‖, 1e-12). Unchanged when either state is multiplied by a positive number.
    /// </summary>
    /// <inheritdoc cref="HiddenMse" path="/param"/>
    /// <inheritdoc cref="HiddenMse" path="/exception"/>
    public static Tensor HiddenCosine(Tensor student, Tensor teacher, Tensor? mask = null)
    {
        CheckPair(student, teacher, mask, "hidden width", nameof(student), nameof(teacher));
        using var scope = NewDisposeScope();
        Tensor dot = (student * teacher).sum(-1);
        Tensor norms = (student.square().sum(-1) * teacher.square().sum(-1)).sqrt().clamp_min(CosineEpsilon);
        return MaskedMean(1.0 - dot / norms, mask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// MiniLM's attention transfer (Wang et al., "MiniLM: Deep Self-Attention Distillation for Task-Agnostic
    /// Compression of Pre-Trained Transformers", 2020): KL(a_T ‖ a_S) between each query's attention row,
    /// Σ_j a_T(j)·(log a_T(j) − log a_S(j)) with 0·log 0 = 0, averaged over batch, heads and query positions.
    /// </summary>
    /// <remarks>
    /// When the head counts differ, both maps are first averaged over their heads (an average of distributions is a
    /// distribution) and the KL is taken between the averages. Student probabilities below the dtype's smallest
    /// normal number are clamped to it inside the logarithm, so a row whose student probability underflowed gives a
    /// large finite loss instead of infinity.
    /// </remarks>
    /// <param name="studentAttention">Student attention probabilities [batch, heads, time, time].</param>
    /// <param name="teacherAttention">Teacher attention probabilities [batch, heads', time, time].</param>
    /// <exception cref="ArgumentException">Not rank 4, or batch or time differ.</exception>
    public static Tensor AttentionTransfer(Tensor studentAttention, Tensor teacherAttention)
    {
        ArgumentNullException.ThrowIfNull(studentAttention);
        ArgumentNullException.ThrowIfNull(teacherAttention);
        CheckFloating(studentAttention, nameof(studentAttention));
        CheckFloating(teacherAttention, nameof(teacherAttention));
        if (studentAttention.dim() != 4 || studentAttention.shape[2] != studentAttention.shape[3])
        {
            throw new ArgumentException($"Attention maps are [batch, heads, time, time]; got {Shape(studentAttention.shape)}.", nameof(studentAttention));
        }

        long[] s = studentAttention.shape, t = teacherAttention.shape;
        if (teacherAttention.dim() != 4 || t[0] != s[0] || t[2] != s[2] || t[3] != s[3] || teacherAttention.dtype != studentAttention.dtype)
        {
            throw new ArgumentException($"The teacher's attention {teacherAttention.dtype} {Shape(t)} does not match the student's {studentAttention.dtype} {Shape(s)} (batch and time must agree; heads may differ).", nameof(teacherAttention));
        }

        using var scope = NewDisposeScope();
        Tensor student = studentAttention, teacher = teacherAttention;
        if (s[1] != t[1])
        {
            student = student.mean([1], keepdim: true);
            teacher = teacher.mean([1], keepdim: true);
        }

        double tiny = student.dtype == ScalarType.Float64 ? 2.2250738585072014e-308 : 1.1754943508222875e-38;
        Tensor positive = teacher.gt(0);
        Tensor logTeacher = torch.where(positive, teacher, torch.ones_like(teacher)).log();
        Tensor terms = torch.where(positive, teacher * (logTeacher - student.clamp_min(tiny).log()), torch.zeros_like(teacher));
        return terms.sum(-1).mean().MoveToOuterDisposeScope();
    }

    /// <summary>The floor of ‖s‖·‖t‖ in the cosine loss: only zero vectors reach it.</summary>
    internal const double CosineEpsilon = 1e-12;

    private static (Tensor Student, Tensor Teacher) LogProbabilities(Tensor studentLogits, Tensor teacherLogits, double temperature) =>
        temperature == 1
            ? (studentLogits.log_softmax(-1), teacherLogits.log_softmax(-1))
            : ((studentLogits / temperature).log_softmax(-1), (teacherLogits / temperature).log_softmax(-1));

    /// <summary>The mean of <paramref name="values"/> over the entries where <paramref name="mask"/> is true (all when
    /// null); 0 when none is.</summary>
    private static Tensor MaskedMean(Tensor values, Tensor? mask)
    {
        if (mask is null)
        {
            return values.mean();
        }

        Tensor kept = torch.where(mask, values, torch.zeros_like(values));
        return kept.sum() / mask.sum().to(values.dtype).clamp_min(1);
    }

    private static void CheckLogits(Tensor studentLogits, Tensor teacherLogits, double temperature, Tensor? mask)
    {
        if (!(temperature > 0) || double.IsInfinity(temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be finite and greater than 0.");
        }

        CheckPair(studentLogits, teacherLogits, mask, "vocabulary", nameof(studentLogits), nameof(teacherLogits));
    }

    private static void CheckPair(Tensor student, Tensor teacher, Tensor? mask, string lastDimension, string studentName, string teacherName)
    {
        ArgumentNullException.ThrowIfNull(student, studentName);
        ArgumentNullException.ThrowIfNull(teacher, teacherName);
        CheckFloating(student, studentName);
        if (student.dim() < 1)
        {
            throw new ArgumentException("Expected at least one dimension.", studentName);
        }

        if (!teacher.shape.SequenceEqual(student.shape) || teacher.dtype != student.dtype)
        {
            string detail = teacher.dim() == student.dim() && teacher.shape[..^1].SequenceEqual(student.shape[..^1])
                ? $": the student's {lastDimension} is {student.shape[^1]}, the teacher's {teacher.shape[^1]}"
                : "";
            throw new ArgumentException($"The teacher's {teacher.dtype} {Shape(teacher.shape)} does not match the student's {student.dtype} {Shape(student.shape)}{detail}.", teacherName);
        }

        if (mask is not null && (mask.dtype != ScalarType.Bool || !mask.shape.SequenceEqual(student.shape[..^1])))
        {
            throw new ArgumentException($"The mask must be bool {Shape(student.shape[..^1])}; got {mask.dtype} {Shape(mask.shape)}.", nameof(mask));
        }
    }

    private static void CheckFloating(Tensor tensor, string name)
    {
        if (tensor.dtype is not (ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16 or ScalarType.Float16))
        {
            throw new ArgumentException($"Expected a floating-point tensor; got {tensor.dtype}.", name);
        }
    }

    private static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
