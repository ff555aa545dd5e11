using Compression.TorchSharp.Distillation;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using R = Compression.TorchSharp.Tests.Distillation.LossReference;

namespace Compression.TorchSharp.Tests.Distillation;

/// <summary>
/// <see cref="DistillationLosses"/> against the float64 loop references of <see cref="LossReference"/>, their autograd
/// gradients against central finite differences, their invariants and their argument checks.
/// </summary>
[Collection("TorchSharp")]
public class DistillationLossesTests(ITestOutputHelper output)
{
    private const int Rows = 12, Vocabulary = 37;
    private static readonly long[] LogitShape = [3, 4, Vocabulary];

    public static TheoryData<double, double, bool> Cases()
    {
        // Temperatures 0.5–4, logit scales from ordinary (3) to large (60: softmax(60·z) is nearly one-hot, so a naive
        // exp-then-log would overflow or take log 0), with and without a mask.
        var data = new TheoryData<double, double, bool>();
        foreach (double t in new[] { 0.5, 1, 2, 4 })
        {
            data.Add(t, 3, false);
            data.Add(t, 60, true);
        }

        return data;
    }

    private static (double[] Student, double[] Teacher, bool[] Mask) Logits(double scale, int seed) =>
        (R.Gaussian(Rows * Vocabulary, seed, scale), R.Gaussian(Rows * Vocabulary, seed + 1, scale), R.Mask(Rows, seed + 2));

    private static Tensor MaskTensor(bool[] mask) => tensor(mask, [3, 4]);

    /// <summary>Every logit loss in float64 and float32 against its reference. Float64 agrees to 1e-12 relative (a
    /// few hundred roundings of 1e-16 each; measured ≤ 2e-15). Float32 inputs are computed in float32: each
    /// log-probability carries an absolute error of a few units of 6e-8·max|z|/T (the roundings of z/T and of the
    /// log-sum-exp), the divergence sums differences of such log-probabilities weighted by probabilities (total 1),
    /// and T² scales the result, so the bound is 3e-7·(1 + max|z|/T)·T² plus 3e-7 relative (about five ulps; the
    /// largest measured error is 40% of it). The float64 reference is computed from the float32-rounded inputs.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void LogitLosses_MatchTheFloat64Reference(double temperature, double scale, bool masked)
    {
        (double[] s, double[] t, bool[] m) = Logits(scale, 11);
        bool[]? mask = masked ? m : null;
        foreach (ScalarType dtype in new[] { ScalarType.Float64, ScalarType.Float32 })
        {
            double[] s64 = dtype == ScalarType.Float64 ? s : s.Select(v => (double)(float)v).ToArray();
            double[] t64 = dtype == ScalarType.Float64 ? t : t.Select(v => (double)(float)v).ToArray();
            double maxOverT = s64.Concat(t64).Max(Math.Abs) / temperature;
            using var scope = NewDisposeScope();
            Tensor student = R.ToTensor(s64, LogitShape, dtype), teacher = R.ToTensor(t64, LogitShape, dtype);
            Tensor? maskTensor = mask is null ? null : MaskTensor(mask);
            (string Name, double Expected, Tensor Actual)[] cases =
            [
                ("KL", R.Kl(t64, s64, Vocabulary, temperature, mask), DistillationLosses.KullbackLeibler(student, teacher, temperature, maskTensor)),
                ("reverse KL", R.Kl(s64, t64, Vocabulary, temperature, mask), DistillationLosses.ReverseKullbackLeibler(student, teacher, temperature, maskTensor)),
                ("JSD 0.5", R.Jsd(s64, t64, Vocabulary, 0.5, temperature, mask), DistillationLosses.JensenShannon(student, teacher, 0.5, temperature, maskTensor)),
                ("JSD 0.1", R.Jsd(s64, t64, Vocabulary, 0.1, temperature, mask), DistillationLosses.JensenShannon(student, teacher, 0.1, temperature, maskTensor)),
                ("JSD 0.9", R.Jsd(s64, t64, Vocabulary, 0.9, temperature, mask), DistillationLosses.JensenShannon(student, teacher, 0.9, temperature, maskTensor)),
            ];
            foreach ((string name, double expected, Tensor actual) in cases)
            {
                Assert.Equal(dtype, actual.dtype);
                Assert.Equal(0, actual.dim());
                double tolerance = dtype == ScalarType.Float64
                    ? 1e-12 * Math.Max(1, Math.Abs(expected))
                    : 3e-7 * (1 + maxOverT) * temperature * temperature + 3e-7 * Math.Abs(expected);
                double error = Math.Abs(actual.ToDouble() - expected);
                output.WriteLine($"{name,-10} {dtype,-7} T={temperature} scale={scale}: value {expected:G6}, error {error:E2} (bound {tolerance:E2})");
                Assert.True(error <= tolerance, $"{name} {dtype} T={temperature} scale={scale}: {actual.ToDouble()} vs {expected} (error {error:E2} > {tolerance:E2})");
            }
        }
    }

    [Fact]
    public void CrossEntropy_MatchesTheFloat64Reference_AndSkipsIgnoredLabels()
    {
        double[] logits = R.Gaussian(Rows * Vocabulary, 21, 20);
        var random = new Random(22);
        long[] labels = Enumerable.Range(0, Rows).Select(i => i % 4 == 1 ? -100L : random.Next(Vocabulary)).ToArray();
        using var scope = NewDisposeScope();
        Tensor actual = DistillationLosses.CrossEntropy(R.ToTensor(logits, LogitShape), tensor(labels, [3, 4]));
        double expected = R.CrossEntropy(logits, labels, Vocabulary, -100);
        Assert.Equal(expected, actual.ToDouble(), 1e-12 * Math.Max(1, expected));   // float64: a few roundings per row
        // The same with another ignore index and no ignored label; and 0 (not NaN) when every label is ignored.
        long[] all = labels.Select(l => l < 0 ? 5L : l).ToArray();
        Assert.Equal(R.CrossEntropy(logits, all, Vocabulary, -1), DistillationLosses.CrossEntropy(R.ToTensor(logits, LogitShape), tensor(all, [3, 4]), ignoreIndex: -1).ToDouble(), 1e-12 * Math.Max(1, expected));
        Assert.Equal(0.0, DistillationLosses.CrossEntropy(R.ToTensor(logits, LogitShape), full([3, 4], -100L)).ToDouble());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void HiddenLosses_MatchTheFloat64Reference(bool masked)
    {
        const int Width = 24;
        double[] a = R.Gaussian(Rows * Width, 31, 5), b = R.Gaussian(Rows * Width, 32, 3);
        bool[]? mask = masked ? R.Mask(Rows, 33) : null;
        using var scope = NewDisposeScope();
        Tensor s = R.ToTensor(a, [3, 4, Width]), t = R.ToTensor(b, [3, 4, Width]);
        Tensor? m = mask is null ? null : MaskTensor(mask);
        // float64: sums of 24 products per row, 12 rows; 1e-12 relative leaves a wide margin over ≈1e-15.
        double mse = R.Mse(a, b, Width, mask), cosine = R.Cosine(a, b, Width, mask);
        Assert.Equal(mse, DistillationLosses.HiddenMse(s, t, m).ToDouble(), 1e-12 * mse);
        Assert.Equal(cosine, DistillationLosses.HiddenCosine(s, t, m).ToDouble(), 1e-12);
        // float32 (inputs rounded first): relative 1e-5 covers accumulation over 24-element rows (≈ 24·6e-8).
        Tensor s32 = s.to(ScalarType.Float32), t32 = t.to(ScalarType.Float32);
        double[] a32 = a.Select(v => (double)(float)v).ToArray(), b32 = b.Select(v => (double)(float)v).ToArray();
        Assert.Equal(R.Mse(a32, b32, Width, mask), DistillationLosses.HiddenMse(s32, t32, m).ToDouble(), 1e-5 * mse);
        Assert.Equal(R.Cosine(a32, b32, Width, mask), DistillationLosses.HiddenCosine(s32, t32, m).ToDouble(), 1e-5);
    }

    [Theory]
    [InlineData(4, 4)]
    [InlineData(4, 2)]
    public void AttentionTransfer_MatchesTheFloat64Reference(int studentHeads, int teacherHeads)
    {
        const int Batch = 2, Time = 7;
        double[] s = R.CausalSoftmax(R.Gaussian(Batch * studentHeads * Time * Time, 41, 3), Time);
        double[] t = R.CausalSoftmax(R.Gaussian(Batch * teacherHeads * Time * Time, 42, 3), Time);
        double expected = studentHeads == teacherHeads
            ? R.RowKl(s, t, Time)
            : R.RowKl(HeadMean(s, Batch, studentHeads, Time), HeadMean(t, Batch, teacherHeads, Time), Time);
        using var scope = NewDisposeScope();
        Tensor actual = DistillationLosses.AttentionTransfer(R.ToTensor(s, [Batch, studentHeads, Time, Time]), R.ToTensor(t, [Batch, teacherHeads, Time, Time]));
        Assert.Equal(expected, actual.ToDouble(), 1e-12 * Math.Max(1, expected));   // float64, sums of ≤ 7 terms per row
        Assert.True(expected > 0.05, $"the test needs distinct maps; KL {expected}");
    }

    private static double[] HeadMean(double[] maps, int batch, int heads, int time)
    {
        var result = new double[batch * time * time];
        for (int b = 0; b < batch; b++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < time * time; i++)
                {
                    result[b * time * time + i] += maps[(b * heads + h) * time * time + i] / heads;
                }
            }
        }

        return result;
    }

    /// <summary>The forward KL's gradient with respect to the student logits is (p_S − p_T)·T per counted position,
    /// divided by the number of counted positions (the T² factor cancels the 1/T of the softmax), 0 elsewhere.</summary>
    [Theory]
    [InlineData(0.5)]
    [InlineData(1.0)]
    [InlineData(2.0)]
    [InlineData(4.0)]
    public void KullbackLeibler_Gradient_IsTheClosedForm(double temperature)
    {
        (double[] s, double[] t, bool[] mask) = Logits(4, 51);
        using var scope = NewDisposeScope();
        Tensor student = R.ToTensor(s, LogitShape).requires_grad_(), teacher = R.ToTensor(t, LogitShape);
        DistillationLosses.KullbackLeibler(student, teacher, temperature, MaskTensor(mask)).backward();
        double[] gradient = student.grad!.data<double>().ToArray();
        int counted = mask.Count(m => m);
        for (int r = 0; r < Rows; r++)
        {
            double[] ls = R.LogSoftmax(s.AsSpan(r * Vocabulary, Vocabulary), temperature), lt = R.LogSoftmax(t.AsSpan(r * Vocabulary, Vocabulary), temperature);
            for (int v = 0; v < Vocabulary; v++)
            {
                double expected = mask[r] ? (Math.Exp(ls[v]) - Math.Exp(lt[v])) * temperature / counted : 0;
                Assert.Equal(expected, gradient[r * Vocabulary + v], 1e-14);   // float64; entries are ≤ T/counted ≈ 0.5
            }
        }
    }

    public static TheoryData<string> Losses() => new() { "KL", "reverse KL", "JSD 0.3", "cross-entropy", "MSE", "cosine", "attention" };

    /// <summary>Autograd in float64 against central differences (f(x + h·d) − f(x − h·d)) / 2h along three random
    /// directions, relative to ‖∇f‖·‖d‖: with h = 1e-5 the truncation error is O(h²·f''') ≈ 1e-10 and the rounding
    /// error ≈ 1e-16·|f|/h ≈ 1e-11, so the bound is 1e-9 (measured ≤ 3e-11); a wrong factor or term moves the
    /// derivative by a sizeable fraction of the scale.</summary>
    [Theory]
    [MemberData(nameof(Losses))]
    public void Loss_Gradient_MatchesFiniteDifferences(string loss)
    {
        const int Width = 9, Time = 5;
        bool[] mask = R.Mask(Rows, 61);
        double[] x, fixedInput;
        long[] shape;
        Func<Tensor, Tensor> f;
        var random = new Random(62);
        long[] labels = Enumerable.Range(0, Rows).Select(i => i % 5 == 2 ? -100L : random.Next(Vocabulary)).ToArray();
        switch (loss)
        {
            case "attention":
                // Through the causal softmax, as in a model: the student's scores are the variable.
                shape = [2, 3, Time, Time];
                x = R.Gaussian(2 * 3 * Time * Time, 63, 2);
                fixedInput = R.CausalSoftmax(R.Gaussian(2 * 3 * Time * Time, 64, 2), Time);
                f = scores => DistillationLosses.AttentionTransfer(
                    (scores + triu(full(Time, Time, double.NegativeInfinity, dtype: ScalarType.Float64), 1)).softmax(-1),
                    R.ToTensor(fixedInput, shape));
                break;
            case "MSE" or "cosine":
                shape = [3, 4, Width];
                x = R.Gaussian(Rows * Width, 65, 2);
                fixedInput = R.Gaussian(Rows * Width, 66, 2);
                f = loss == "MSE"
                    ? s => DistillationLosses.HiddenMse(s, R.ToTensor(fixedInput, shape), MaskTensor(mask))
                    : s => DistillationLosses.HiddenCosine(s, R.ToTensor(fixedInput, shape), MaskTensor(mask));
                break;
            default:
                shape = LogitShape;
                x = R.Gaussian(Rows * Vocabulary, 67, 3);
                fixedInput = R.Gaussian(Rows * Vocabulary, 68, 3);
                f = loss switch
                {
                    "KL" => s => DistillationLosses.KullbackLeibler(s, R.ToTensor(fixedInput, shape), 2, MaskTensor(mask)),
                    "reverse KL" => s => DistillationLosses.ReverseKullbackLeibler(s, R.ToTensor(fixedInput, shape), 2, MaskTensor(mask)),
                    "JSD 0.3" => s => DistillationLosses.JensenShannon(s, R.ToTensor(fixedInput, shape), 0.3, 2, MaskTensor(mask)),
                    _ => s => DistillationLosses.CrossEntropy(s, tensor(labels, [3, 4])),
                };
                break;
        }

        using var scope = NewDisposeScope();
        Tensor variable = R.ToTensor(x, shape).requires_grad_();
        f(variable).backward();
        double[] gradient = variable.grad!.data<double>().ToArray();
        const double H = 1e-5;
        for (int direction = 0; direction < 3; direction++)
        {
            double[] d = R.Gaussian(x.Length, 70 + direction);
            double plus, minus;
            using (no_grad())
            {
                plus = f(R.ToTensor(x.Zip(d, (a, b) => a + H * b).ToArray(), shape)).ToDouble();
                minus = f(R.ToTensor(x.Zip(d, (a, b) => a - H * b).ToArray(), shape)).ToDouble();
            }

            double numeric = (plus - minus) / (2 * H);
            double analytic = gradient.Zip(d, (g, v) => g * v).Sum();
            double scale = Math.Sqrt(gradient.Sum(g => g * g)) * Math.Sqrt(d.Sum(v => v * v));
            output.WriteLine($"{loss}, direction {direction}: |finite difference − autograd| / scale = {Math.Abs(numeric - analytic) / scale:E2}");
            Assert.True(Math.Abs(numeric - analytic) <= 1e-9 * scale, $"{loss}, direction {direction}: finite difference {numeric}, autograd {analytic} (scale {scale})");
            Assert.True(scale > 1e-3, $"{loss}: the gradient must not vanish for the test to mean anything ({scale})");
        }
    }

    [Fact]
    public void KullbackLeibler_IsPositive_AndZeroForShiftedLogits()
    {
        (double[] s, double[] t, _) = Logits(5, 81);
        using var scope = NewDisposeScope();
        Tensor student = R.ToTensor(s, LogitShape), teacher = R.ToTensor(t, LogitShape);
        foreach (double temperature in new[] { 0.5, 1, 2, 4 })
        {
            Assert.True(DistillationLosses.KullbackLeibler(student, teacher, temperature).ToDouble() > 0);
            Assert.True(DistillationLosses.ReverseKullbackLeibler(student, teacher, temperature).ToDouble() > 0);
            Assert.True(DistillationLosses.JensenShannon(student, teacher, 0.2, temperature).ToDouble() > 0);
            // A constant per position does not change a softmax: the divergences vanish up to rounding (float64,
            // log-probabilities of magnitude ≈ 30 differ by a few 1e-15).
            Tensor shifted = student + R.ToTensor(R.Gaussian(Rows, 82, 100), [3, 4, 1]);
            Assert.Equal(0, DistillationLosses.KullbackLeibler(student, shifted, temperature).ToDouble(), 1e-12);
            Assert.Equal(0, DistillationLosses.ReverseKullbackLeibler(student, shifted, temperature).ToDouble(), 1e-12);
            Assert.Equal(0, DistillationLosses.JensenShannon(student, shifted, 0.7, temperature).ToDouble(), 1e-12);
        }
    }

    [Fact]
    public void ReverseKullbackLeibler_IsTheForwardDivergenceWithTheModelsSwapped()
    {
        (double[] s, double[] t, bool[] mask) = Logits(7, 91);
        using var scope = NewDisposeScope();
        Tensor student = R.ToTensor(s, LogitShape), teacher = R.ToTensor(t, LogitShape);
        Assert.Equal(DistillationLosses.KullbackLeibler(teacher, student, 2, MaskTensor(mask)).ToDouble(),
                     DistillationLosses.ReverseKullbackLeibler(student, teacher, 2, MaskTensor(mask)).ToDouble());
        Assert.NotEqual(DistillationLosses.KullbackLeibler(student, teacher, 2).ToDouble(), DistillationLosses.ReverseKullbackLeibler(student, teacher, 2).ToDouble());
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(3.0)]
    public void JensenShannon_IsSymmetricAtOneHalf_AndBoundedByLn2TimesTSquared(double temperature)
    {
        (double[] s, double[] t, _) = Logits(6, 101);
        using var scope = NewDisposeScope();
        Tensor student = R.ToTensor(s, LogitShape), teacher = R.ToTensor(t, LogitShape);
        double forward = DistillationLosses.JensenShannon(student, teacher, 0.5, temperature).ToDouble();
        Assert.Equal(forward, DistillationLosses.JensenShannon(teacher, student, 0.5, temperature).ToDouble(), 1e-14);
        // β and the roles swap together: JSD_β(S, T) = JSD_{1−β}(T, S).
        Assert.Equal(DistillationLosses.JensenShannon(student, teacher, 0.2, temperature).ToDouble(),
                     DistillationLosses.JensenShannon(teacher, student, 0.8, temperature).ToDouble(), 1e-14);
        Assert.InRange(forward, 1e-3, Math.Log(2) * temperature * temperature);
        // Disjoint one-hot distributions reach the bound: mass on token 0 against mass on token 1 at a margin of
        // 2000/T, so each leaks e^(−2000/T) of its mass elsewhere (nothing at float64).
        Tensor a = zeros(3, 4, Vocabulary, dtype: ScalarType.Float64), b = zeros(3, 4, Vocabulary, dtype: ScalarType.Float64);
        a[.., .., 0] = 2000.0;
        b[.., .., 1] = 2000.0;
        double disjoint = DistillationLosses.JensenShannon(a, b, 0.5, temperature).ToDouble();
        Assert.Equal(Math.Log(2) * temperature * temperature, disjoint, 1e-12);
    }

    [Fact]
    public void HiddenCosine_IsInvariantToPositiveScaling_AndZeroForParallelStates()
    {
        double[] a = R.Gaussian(Rows * 16, 111), b = R.Gaussian(Rows * 16, 112);
        using var scope = NewDisposeScope();
        Tensor s = R.ToTensor(a, [3, 4, 16]), t = R.ToTensor(b, [3, 4, 16]);
        double loss = DistillationLosses.HiddenCosine(s, t).ToDouble();
        Assert.Equal(loss, DistillationLosses.HiddenCosine(s * 37.5, t * 0.02).ToDouble(), 1e-14);   // float64 rounding only
        Assert.Equal(0, DistillationLosses.HiddenCosine(s * 3, s).ToDouble(), 1e-14);
        Assert.Equal(2, DistillationLosses.HiddenCosine(-s, s).ToDouble(), 1e-14);
        Assert.NotEqual(DistillationLosses.HiddenMse(s, t).ToDouble(), DistillationLosses.HiddenMse(s * 37.5, t).ToDouble());
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void LogitLosses_TemperatureNotPositive_ThrowNamingTemperature(double temperature)
    {
        using var scope = NewDisposeScope();
        Tensor a = zeros(2, 5, dtype: ScalarType.Float64);
        Assert.Equal("temperature", Assert.Throws<ArgumentOutOfRangeException>(() => DistillationLosses.KullbackLeibler(a, a, temperature)).ParamName);
        Assert.Equal("temperature", Assert.Throws<ArgumentOutOfRangeException>(() => DistillationLosses.ReverseKullbackLeibler(a, a, temperature)).ParamName);
        Assert.Equal("temperature", Assert.Throws<ArgumentOutOfRangeException>(() => DistillationLosses.JensenShannon(a, a, 0.5, temperature)).ParamName);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-0.5)]
    [InlineData(double.NaN)]
    public void JensenShannon_BetaOutsideTheOpenInterval_ThrowsNamingBeta(double beta)
    {
        using Tensor a = zeros(2, 5);
        Assert.Equal("beta", Assert.Throws<ArgumentOutOfRangeException>(() => DistillationLosses.JensenShannon(a, a, beta)).ParamName);
    }

    [Fact]
    public void Losses_ShapeMismatch_ThrowNamingTheArgumentAndTheSizes()
    {
        using var scope = NewDisposeScope();
        Tensor student = zeros(2, 3, 50), teacher = zeros(2, 3, 64);
        var vocabulary = Assert.Throws<ArgumentException>(() => DistillationLosses.KullbackLeibler(student, teacher));
        Assert.Equal("teacherLogits", vocabulary.ParamName);
        Assert.Contains("50", vocabulary.Message);
        Assert.Contains("64", vocabulary.Message);
        Assert.Equal("teacherLogits", Assert.Throws<ArgumentException>(() => DistillationLosses.JensenShannon(student, zeros(2, 4, 50))).ParamName);
        Assert.Equal("teacherLogits", Assert.Throws<ArgumentException>(() => DistillationLosses.ReverseKullbackLeibler(student, zeros(2, 3, 50, dtype: ScalarType.Float64))).ParamName);
        Assert.Equal("mask", Assert.Throws<ArgumentException>(() => DistillationLosses.KullbackLeibler(student, student, 1, ones(2, 3))).ParamName);
        Assert.Equal("mask", Assert.Throws<ArgumentException>(() => DistillationLosses.KullbackLeibler(student, student, 1, ones(3, 2, dtype: ScalarType.Bool))).ParamName);
        Assert.Equal("teacher", Assert.Throws<ArgumentException>(() => DistillationLosses.HiddenMse(zeros(2, 8), zeros(2, 9))).ParamName);
        Assert.Equal("teacher", Assert.Throws<ArgumentException>(() => DistillationLosses.HiddenCosine(zeros(2, 8), zeros(3, 8))).ParamName);
        Assert.Equal("labels", Assert.Throws<ArgumentException>(() => DistillationLosses.CrossEntropy(student, zeros(2, 3, dtype: ScalarType.Int32))).ParamName);
        Assert.Equal("labels", Assert.Throws<ArgumentException>(() => DistillationLosses.CrossEntropy(student, zeros(3, 2, dtype: ScalarType.Int64))).ParamName);
        Assert.Equal("studentLogits", Assert.Throws<ArgumentException>(() => DistillationLosses.KullbackLeibler(zeros(2, 3, 50, dtype: ScalarType.Int64), teacher)).ParamName);
        Assert.Equal("teacherAttention", Assert.Throws<ArgumentException>(() => DistillationLosses.AttentionTransfer(zeros(1, 2, 4, 4), zeros(1, 2, 5, 5))).ParamName);
        Assert.Equal("studentAttention", Assert.Throws<ArgumentException>(() => DistillationLosses.AttentionTransfer(zeros(2, 4, 4), zeros(1, 2, 4, 4))).ParamName);
    }
}
