using Compression.TorchSharp.Distillation;
using Compression.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Distillation;

/// <summary>
/// <see cref="DistillationLoss"/> and <see cref="DistillationObjective"/>: the weighted mix of the terms, the uniform
/// layer map, learned projections when widths differ, and the checks on models and options. Small Llama models with
/// seeded random weights, so that the widths, depths and vocabularies can be chosen.
/// </summary>
[Collection("TorchSharp")]
public class DistillationLossTests
{
    private const int Vocabulary = 50, Batch = 2, Time = 8;

    private static LlamaForCausalLM Llama(int hidden, int layers, int heads, int seed, int vocabulary = Vocabulary)
    {
        manual_seed(seed);
        var model = new LlamaForCausalLM(new LlamaConfig(hidden, 2 * hidden, layers, heads, heads / 2, hidden / heads, vocabulary, 64, 1e-6, 10000, false));
        model.eval();
        return model;
    }

    private static Tensor Labels()
    {
        // Next-token ids with the first position of each row ignored, as for a prompt.
        Tensor labels = randint(0, Vocabulary, [Batch, Time], generator: new Generator(5));
        labels[.., 0] = -100L;
        return labels;
    }

    [Fact]
    public void Compute_Total_IsTheWeightedSumOfTheTerms_EachEqualToItsFunction()
    {
        using LlamaForCausalLM student = Llama(32, 2, 4, 1), teacher = Llama(64, 4, 8, 2);
        var objective = new DistillationObjective
        {
            Divergence = Divergence.JensenShannon, JensenShannonBeta = 0.3, Temperature = 2,
            LogitWeight = 2, LabelWeight = 0.5, HiddenWeight = 3, HiddenLoss = HiddenStateLoss.Cosine, AttentionWeight = 1.5,
        };
        using var loss = new DistillationLoss(objective, student, teacher);
        // The uniform map pairs student index i with teacher index ⌊i·4/2⌋: embeddings, middle, last.
        Assert.Equal([(0, 0), (1, 2), (2, 4)], loss.LayerMap);
        Assert.Equal(OutputCapture.HiddenStates | OutputCapture.Attentions, objective.StudentCapture);

        using var scope = NewDisposeScope();
        Tensor input = randint(0, Vocabulary, [Batch, Time], generator: new Generator(3)), labels = Labels();
        using ModelOutputs t = teacher.Run(input, objective.TeacherCapture), s = student.Run(input, objective.StudentCapture);
        DistillationLossTerms terms = loss.Compute(s, t, labels);

        Tensor mask = labels.ne(-100);
        double logit = DistillationLosses.JensenShannon(s.Logits, t.Logits, 0.3, 2, mask).ToDouble();
        double label = DistillationLosses.CrossEntropy(s.Logits, labels).ToDouble();
        double hidden = new[] { (0, 0), (1, 2), (2, 4) }.Select((p, k) =>
            DistillationLosses.HiddenCosine(loss.HiddenProjections[k].call(s.HiddenStates[p.Item1]), t.HiddenStates[p.Item2], mask).ToDouble()).Average();
        double attention = (DistillationLosses.AttentionTransfer(s.Attentions[0], t.Attentions[1]).ToDouble()
                          + DistillationLosses.AttentionTransfer(s.Attentions[1], t.Attentions[3]).ToDouble()) / 2;
        // float32 terms; the same operations in another grouping: a few ulps of values ≈ 1–5.
        Assert.Equal(logit, terms.Logit, 1e-6);
        Assert.Equal(label, terms.Label, 1e-6);
        Assert.Equal(hidden, terms.Hidden, 1e-6);
        Assert.Equal(attention, terms.Attention, 1e-6);
        Assert.All(new[] { logit, label, hidden, attention }, v => Assert.True(v > 1e-3, $"term {v} too small to test the mix"));
        Assert.Equal(2 * logit + 0.5 * label + 3 * hidden + 1.5 * attention, terms.Total.ToDouble(), 1e-5);
        terms.Total.Dispose();
    }

    [Fact]
    public void Compute_ZeroWeights_AreNotComputed_AndNeedNoCapture()
    {
        using LlamaForCausalLM student = Llama(32, 2, 4, 1), teacher = Llama(32, 2, 4, 2);
        var objective = new DistillationObjective { Divergence = Divergence.ReverseKl, LabelWeight = 1 };
        Assert.Equal(OutputCapture.Logits, objective.StudentCapture);
        using var loss = new DistillationLoss(objective, student, teacher);
        using var scope = NewDisposeScope();
        Tensor input = randint(0, Vocabulary, [Batch, Time], generator: new Generator(3)), labels = Labels();
        using ModelOutputs t = teacher.Run(input, objective.TeacherCapture), s = student.Run(input, objective.StudentCapture);
        DistillationLossTerms terms = loss.Compute(s, t, labels);
        Assert.Equal(0, terms.Hidden);
        Assert.Equal(0, terms.Attention);
        double reverse = DistillationLosses.ReverseKullbackLeibler(s.Logits, t.Logits, 1, labels.ne(-100)).ToDouble();
        Assert.Equal(reverse + terms.Label, terms.Total.ToDouble(), 1e-5);   // float32 sum of two terms ≈ 4
        Assert.Equal(reverse, terms.Logit, 1e-6);
    }

    [Fact]
    public void Compute_IgnoredPositions_DoNotAffectTheLogitAndHiddenTerms()
    {
        using LlamaForCausalLM student = Llama(32, 2, 4, 1), teacher = Llama(32, 2, 4, 2);
        var objective = new DistillationObjective { Temperature = 2, HiddenWeight = 1 };
        using var loss = new DistillationLoss(objective, student, teacher);
        using var scope = NewDisposeScope();
        Tensor input = randint(0, Vocabulary, [Batch, Time], generator: new Generator(3)), labels = Labels();
        using ModelOutputs t = teacher.Run(input, objective.TeacherCapture), s = student.Run(input, objective.StudentCapture);
        DistillationLossTerms terms = loss.Compute(s, t, labels);

        // The teacher changed only at position 0, whose label is −100: nothing changes, bit for bit.
        Tensor logits = t.Logits.clone();
        logits[.., 0] = randn(Batch, Vocabulary, generator: new Generator(4)) * 10;
        Tensor[] hidden = t.HiddenStates.Select(h => { Tensor c = h.clone(); c[.., 0] = c[.., 0] * -3; return c; }).ToArray();
        using var changed = new ModelOutputs(logits.DetachFromDisposeScope(), hidden.Select(h => h.DetachFromDisposeScope()).ToArray());
        DistillationLossTerms same = loss.Compute(s, changed, labels);
        Assert.Equal(terms.Logit, same.Logit);
        Assert.Equal(terms.Hidden, same.Hidden);

        // Changing position 1, which counts, changes both.
        Tensor logits1 = t.Logits.clone();
        logits1[.., 1] = randn(Batch, Vocabulary, generator: new Generator(4)) * 10;
        using var changed1 = new ModelOutputs(logits1.DetachFromDisposeScope(), t.HiddenStates.Select(h => (h * 1.5f).DetachFromDisposeScope()).ToArray());
        DistillationLossTerms other = loss.Compute(s, changed1, labels);
        Assert.NotEqual(terms.Logit, other.Logit);
        Assert.NotEqual(terms.Hidden, other.Hidden);
    }

    [Theory]
    [InlineData(32, 64, 1.0, 3)]    // widths differ: one projection per mapped pair
    [InlineData(32, 32, 1.0, 0)]    // same width: none
    [InlineData(32, 64, 0.0, 0)]    // no hidden term: none
    public void Constructor_CreatesProjectionsOnlyWhenWidthsDifferAndTheHiddenTermIsOn(int studentWidth, int teacherWidth, double hiddenWeight, int expected)
    {
        using LlamaForCausalLM student = Llama(studentWidth, 2, 4, 1), teacher = Llama(teacherWidth, 4, 4, 2);
        using var loss = new DistillationLoss(new DistillationObjective { HiddenWeight = hiddenWeight }, student, teacher);
        Assert.Equal(expected, loss.HiddenProjections.Count);
        Assert.Equal(expected, loss.parameters().Count());
        Assert.All(loss.HiddenProjections, p => Assert.Equal([teacherWidth, studentWidth], p.weight!.shape));
        Assert.All(loss.HiddenProjections, p => Assert.Null(p.bias));
    }

    [Fact]
    public void Compute_HiddenTerm_SendsGradientsToTheProjectionsAndTheStudent_NotTheTeacher()
    {
        using LlamaForCausalLM student = Llama(32, 2, 4, 1), teacher = Llama(64, 4, 8, 2);
        var objective = new DistillationObjective { LogitWeight = 0, HiddenWeight = 1, LayerMap = [(2, 4)] };
        using var loss = new DistillationLoss(objective, student, teacher);
        Assert.Single(loss.HiddenProjections);
        using var scope = NewDisposeScope();
        Tensor input = randint(0, Vocabulary, [Batch, Time], generator: new Generator(3));
        using ModelOutputs t = teacher.Run(input, objective.TeacherCapture), s = student.Run(input, objective.StudentCapture);
        DistillationLossTerms terms = loss.Compute(s, t, Labels());
        terms.Total.backward();
        Assert.True(loss.HiddenProjections[0].weight!.grad!.abs().max().item<float>() > 0);
        Assert.True(student.named_parameters().First(p => p.name == "model.layers.1.mlp.down_proj.weight").parameter.grad!.abs().max().item<float>() > 0);
        Assert.All(teacher.parameters(), p => Assert.True(p.grad is null || p.grad.abs().max().item<float>() == 0));

        // One optimiser step on the projection lowers the hidden loss (the gradient points the right way).
        using (no_grad())
        {
            loss.HiddenProjections[0].weight!.sub_(loss.HiddenProjections[0].weight!.grad! * 1e-2);
        }

        using ModelOutputs s2 = student.Run(input, objective.StudentCapture);
        Assert.True(loss.Compute(s2, t, Labels()).Hidden < terms.Hidden);
    }

    [Fact]
    public void Constructor_VocabularyMismatch_ThrowsNamingStudent()
    {
        using LlamaForCausalLM student = Llama(32, 2, 4, 1, vocabulary: 40), teacher = Llama(32, 2, 4, 2);
        var error = Assert.Throws<ArgumentException>(() => new DistillationLoss(new DistillationObjective(), student, teacher));
        Assert.Equal("student", error.ParamName);
        Assert.Contains("40", error.Message);
        Assert.Contains("50", error.Message);
    }

    [Fact]
    public void Constructor_BadObjectiveForTheseModels_ThrowsNamingObjective()
    {
        using LlamaForCausalLM student = Llama(32, 2, 4, 1), teacher = Llama(32, 4, 4, 2);
        Assert.Equal("objective", Assert.Throws<ArgumentException>(() =>
            new DistillationLoss(new DistillationObjective { LogitWeight = 0 }, student, teacher)).ParamName);
        var range = Assert.Throws<ArgumentException>(() =>
            new DistillationLoss(new DistillationObjective { HiddenWeight = 1, LayerMap = [(1, 2), (3, 4)] }, student, teacher));
        Assert.Equal("objective", range.ParamName);
        Assert.Contains("(3, 4)", range.Message);
        Assert.Equal("objective", Assert.Throws<ArgumentException>(() =>
            new DistillationLoss(new DistillationObjective { HiddenWeight = 1, LayerMap = [(1, 5)] }, student, teacher)).ParamName);
        Assert.Equal("objective", Assert.Throws<ArgumentException>(() =>
            new DistillationLoss(new DistillationObjective { AttentionWeight = 1, LayerMap = [(0, 0)] }, student, teacher)).ParamName);
    }

    [Fact]
    public void Compute_MissingCaptureOrMismatchedShapes_ThrowsNamingTheArgument()
    {
        using LlamaForCausalLM student = Llama(32, 2, 4, 1), teacher = Llama(32, 2, 4, 2);
        using var loss = new DistillationLoss(new DistillationObjective { HiddenWeight = 1 }, student, teacher);
        using var scope = NewDisposeScope();
        Tensor input = randint(0, Vocabulary, [Batch, Time], generator: new Generator(3));
        using ModelOutputs bare = student.Run(input, OutputCapture.Logits), full = teacher.Run(input, OutputCapture.HiddenStates);
        Assert.Equal("student", Assert.Throws<ArgumentException>(() => loss.Compute(bare, full, Labels())).ParamName);
        Assert.Equal("labels", Assert.Throws<ArgumentException>(() => loss.Compute(full, full, zeros(Batch, Time + 1, dtype: ScalarType.Int64))).ParamName);
        using ModelOutputs shorter = teacher.Run(input[.., ..5], OutputCapture.HiddenStates);
        Assert.Equal("teacher", Assert.Throws<ArgumentException>(() => loss.Compute(full, shorter, Labels())).ParamName);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-2.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Objective_TemperatureNotPositive_ThrowsNamingTemperature(double temperature) =>
        Assert.Equal("Temperature", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { Temperature = temperature }).ParamName);

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Objective_BetaOutsideTheOpenInterval_ThrowsNamingIt(double beta) =>
        Assert.Equal("JensenShannonBeta", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective() with { JensenShannonBeta = beta }).ParamName);

    [Fact]
    public void Objective_NegativeOrNonFiniteWeightsAndBadMaps_ThrowNamingTheProperty()
    {
        Assert.Equal("LogitWeight", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { LogitWeight = -1 }).ParamName);
        Assert.Equal("LabelWeight", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { LabelWeight = double.NaN }).ParamName);
        Assert.Equal("HiddenWeight", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { HiddenWeight = -0.1 }).ParamName);
        Assert.Equal("AttentionWeight", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { AttentionWeight = double.PositiveInfinity }).ParamName);
        Assert.Equal("LayerMap", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { LayerMap = [(1, -1)] }).ParamName);
        Assert.Equal("LayerMap", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { LayerMap = [(1, 1), (1, 2)] }).ParamName);
        Assert.Equal("LayerMap", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { LayerMap = [] }).ParamName);
        Assert.Equal("Divergence", Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationObjective { Divergence = (Divergence)7 }).ParamName);
        // A zero weight is allowed on its own; the "at least one positive" rule is checked where the objective is used.
        Assert.Equal(0, new DistillationObjective { LogitWeight = 0 }.LogitWeight);
    }
}
