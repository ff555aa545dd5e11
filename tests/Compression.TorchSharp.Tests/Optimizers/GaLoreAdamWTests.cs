using Compression.TorchSharp.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static Compression.TorchSharp.Tests.Optimizers.GaLoreReference;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Optimizers;

/// <summary>GaLoreAdamW's arithmetic against float64 references, its refresh schedule, its AdamW path and its saved state.</summary>
[Collection("TorchSharp")]
public class GaLoreAdamWTests
{
    private static Parameter NewParameter(double[] values, int rows, int columns, ScalarType dtype = ScalarType.Float64) =>
        new(torch.tensor(values, [rows, columns], ScalarType.Float64).to(dtype));

    // A loss whose gradient with respect to p is exactly g: d/dp Σ p⊙g = g.
    private static void SetGradient(Parameter p, double[] g)
    {
        using var scope = NewDisposeScope();
        (p * torch.tensor(g, p.shape, ScalarType.Float64).to(p.dtype)).sum().backward();
    }

    private static double[] Values(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();
    }

    private static double[] BasisOf(GaLoreAdamW optimizer, Parameter p)
    {
        using var scope = NewDisposeScope();
        return Values(optimizer.ProjectorOf(p)!.Basis(ScalarType.Float64));
    }

    [Theory]
    [InlineData(6, 10)] // m ≤ n: left projection, R = PᵀG is r×n
    [InlineData(10, 6)] // m > n: right projection, R = G·Q is m×r
    public void Steps_EqualTheFloat64Reference_MomentsInTheProjectedSpace(int m, int n)
    {
        const int rank = 3, gap = 2, steps = 5;
        const double lr = 0.01, beta1 = 0.9, beta2 = 0.99, eps = 1e-8, decay = 0.1, scale = 0.5;
        var options = new GaLoreOptions
        {
            Rank = rank, UpdateProjectionGap = gap, Scale = scale, LearningRate = lr, Beta1 = beta1, Beta2 = beta2, Epsilon = eps, WeightDecay = decay,
        };
        double[] w = Gaussian(m * n, seed: 1);
        using Parameter p = NewParameter(w, m, n);
        using var optimizer = new GaLoreAdamW([("w", p)], options);
        Assert.Equal(["w"], optimizer.ProjectedParameters);

        bool left = m <= n;
        int d = left ? m : n, other = left ? n : m;
        var moment1 = new double[rank * other];
        var moment2 = new double[rank * other];
        double[]? previousBasis = null;
        for (int t = 1; t <= steps; t++)
        {
            double[] g = Gaussian(m * n, seed: 100 + t);
            SetGradient(p, g);
            optimizer.step();
            optimizer.zero_grad();

            double[] basis = BasisOf(optimizer, p);
            if ((t - 1) % gap == 0)
            {
                // A refresh: B spans G's top-r singular subspace (compared as projectors B·Bᵀ: singular vectors are
                // defined up to sign) and has orthonormal columns. 1e-9: both sides are float64 SVDs of a 6×10 matrix
                // whose singular values are well separated; they agree to ~1e-14.
                double[] reference = left ? TopLeftSingularVectors(g, m, n, rank) : TopLeftSingularVectors(Transpose(g, m, n), n, m, rank);
                Assert.True(MaxAbsDifference(MatMul(basis, d, rank, false, basis, d, rank, true), MatMul(reference, d, rank, false, reference, d, rank, true)) < 1e-9);
                Assert.True(MaxAbsDifference(MatMul(basis, d, rank, true, basis, d, rank, false), Identity(rank)) < 1e-12);
            }
            else
            {
                Assert.Equal(previousBasis, basis);
            }

            previousBasis = basis;
            double[] r = left ? MatMul(basis, d, rank, true, g, m, n, false) : MatMul(g, m, n, false, basis, d, rank, false);
            double c1 = 1 - Math.Pow(beta1, t), c2 = 1 - Math.Pow(beta2, t);
            var normalised = new double[r.Length];
            for (int i = 0; i < r.Length; i++)
            {
                moment1[i] = beta1 * moment1[i] + (1 - beta1) * r[i];
                moment2[i] = beta2 * moment2[i] + (1 - beta2) * r[i] * r[i];
                normalised[i] = moment1[i] / c1 / (Math.Sqrt(moment2[i] / c2) + eps);
            }

            double[] update = left
                ? MatMul(basis, d, rank, false, normalised, rank, n, false)
                : MatMul(normalised, m, rank, false, basis, d, rank, true);
            for (int i = 0; i < w.Length; i++)
            {
                w[i] = w[i] * (1 - lr * decay) - lr * scale * update[i];
            }

            // 1e-12: every quantity is O(1) and computed in float64 on both sides through a few dozen operations.
            (long step, Tensor expAvg, Tensor expAvgSq) = optimizer.MomentsOf(p);
            Assert.Equal(t, step);
            Assert.Equal(left ? [rank, n] : new long[] { m, rank }, expAvg.shape);
            Assert.True(MaxAbsDifference(Values(expAvg), moment1) < 1e-12);
            Assert.True(MaxAbsDifference(Values(expAvgSq), moment2) < 1e-12);
            Assert.True(MaxAbsDifference(Values(p), w) < 1e-12, $"step {t}: {MaxAbsDifference(Values(p), w)}");
        }
    }

    [Fact]
    public void FullRank_KeepsAdamWsFirstMoment_ButNotItsUpdate_BecauseTheSecondMomentIsElementwise()
    {
        // With r = m the basis P is orthogonal, so P·M equals AdamW's first moment exactly; but V = (PᵀG)⊙(PᵀG) is not
        // Pᵀ(G⊙G)P-anything: the normalised update P·(M/√V) is not AdamW's M/√(G⊙G). GaLore at full rank is not AdamW.
        const int m = 6, n = 10;
        double[] w = Gaussian(m * n, seed: 3), g = Gaussian(m * n, seed: 4);
        var options = new GaLoreOptions { Rank = m, Scale = 1, WeightDecay = 0, LearningRate = 0.01 };
        using Parameter galore = NewParameter(w, m, n), adam = NewParameter(w, m, n);
        using var galoreOptimizer = new GaLoreAdamW([("w", galore)], options with { ProjectParameter = (_, _) => true });
        using var adamW = torch.optim.AdamW([adam], lr: 0.01, weight_decay: 0);
        SetGradient(galore, g);
        SetGradient(adam, g);
        galoreOptimizer.step();
        adamW.step();

        double[] basis = BasisOf(galoreOptimizer, galore);
        double[] firstMoment = MatMul(basis, m, m, false, Values(galoreOptimizer.MomentsOf(galore).ExpAvg), m, n, false);
        Assert.True(MaxAbsDifference(firstMoment, g.Select(x => 0.1 * x).ToArray()) < 1e-12);
        double galoreStep = MaxAbsDifference(Values(galore), w), difference = MaxAbsDifference(Values(galore), Values(adam));
        // AdamW's first step moves every weight by lr·sign(g); GaLore's by lr·P·sign(PᵀG), a different matrix.
        Assert.True(difference > 0.2 * galoreStep, $"GaLore moved at most {galoreStep}, differs from AdamW by {difference}");
    }

    [Fact]
    public void Refresh_HappensExactlyEveryGapSteps_AndTheBasisStaysFixedBetween()
    {
        const int gap = 3;
        using Parameter p = NewParameter(Gaussian(8 * 12, seed: 5), 8, 12, ScalarType.Float32);
        using var optimizer = new GaLoreAdamW([("w", p)], new GaLoreOptions { Rank = 2, UpdateProjectionGap = gap });
        var refreshed = new List<int>();
        double[]? previous = null;
        for (int t = 1; t <= 10; t++)
        {
            SetGradient(p, Gaussian(8 * 12, seed: 200 + t));
            int before = optimizer.ProjectorOf(p)!.Refreshes;
            optimizer.step();
            optimizer.zero_grad();
            double[] basis = BasisOf(optimizer, p);
            if (optimizer.ProjectorOf(p)!.Refreshes > before)
            {
                refreshed.Add(t);
                Assert.NotEqual(previous, basis); // independent gradients: a refresh really moves the subspace
            }
            else
            {
                Assert.Equal(previous, basis);
            }

            previous = basis;
        }

        Assert.Equal([1, 4, 7, 10], refreshed);
    }

    [Fact]
    public void UnprojectedParameters_TakeTorchAdamWsStep_Exactly()
    {
        var weights = Gaussian(5 * 7, seed: 6).Select(x => (float)x).ToArray();
        using Parameter a = new(torch.tensor(weights, [5, 7])), b = new(torch.tensor(weights, [5, 7]));
        using Parameter biasA = new(torch.ones(7)), biasB = new(torch.ones(7));
        var options = new GaLoreOptions { LearningRate = 3e-3, Beta1 = 0.8, Beta2 = 0.95, Epsilon = 1e-6, WeightDecay = 0.05, Rank = 8 };
        using var galore = new GaLoreAdamW([("w", a), ("b", biasA)], options); // min(5, 7) ≤ rank 8: nothing projected
        using var adamW = torch.optim.AdamW([b, biasB], lr: 3e-3, beta1: 0.8, beta2: 0.95, eps: 1e-6, weight_decay: 0.05);
        Assert.Empty(galore.ProjectedParameters);
        for (int t = 1; t <= 6; t++)
        {
            double[] g = Gaussian(5 * 7, seed: 300 + t), h = Gaussian(7, seed: 400 + t);
            SetGradient(a, g);
            SetGradient(b, g);
            using (var scope = NewDisposeScope())
            {
                (biasA * torch.tensor(h)).sum().backward();
                (biasB * torch.tensor(h)).sum().backward();
            }

            galore.step();
            adamW.step();
            galore.zero_grad();
            adamW.zero_grad();
        }

        Assert.Equal(Values(b), Values(a));
        Assert.Equal(Values(biasB), Values(biasA));
    }

    [Fact]
    public void RandomizedSvd_FindsTheExactSubspace_OfALowRankPlusNoiseMatrix_Deterministically()
    {
        // Rank-4 signal (singular values 100…20) plus noise of norm ~1: the randomized finder with 2 power iterations
        // recovers the top-4 subspace to ~(σ₅/σ₄)^5 ≈ 1e-6 relative; 1e-4 leaves room for float32.
        using var scope = NewDisposeScope();
        torch.manual_seed(7);
        Tensor u = torch.linalg.qr(torch.randn(60, 4)).Q, v = torch.linalg.qr(torch.randn(90, 4)).Q;
        Tensor signal = u.matmul(torch.diag(torch.tensor(new float[] { 100, 60, 40, 20 }))).matmul(v.t());
        Tensor a = signal + 0.01f * torch.randn(60, 90);
        Tensor exact = SingularVectors.TopLeft(a, 4, GaLoreSvdMethod.Exact, seed: 0);
        Tensor randomized = SingularVectors.TopLeft(a, 4, GaLoreSvdMethod.Randomized, seed: 11);
        double gap = (exact.matmul(exact.t()) - randomized.matmul(randomized.t())).abs().max().item<float>();
        Assert.True(gap < 1e-4, $"projectors differ by {gap}");
        Assert.True(randomized.eq(SingularVectors.TopLeft(a, 4, GaLoreSvdMethod.Randomized, seed: 11)).all().item<bool>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SavedState_ResumesTraining_BitForBit(bool quantized)
    {
        var options = new GaLoreOptions
        {
            Rank = 3, UpdateProjectionGap = 2, SvdMethod = GaLoreSvdMethod.Randomized, LearningRate = 0.01,
            Quantization = quantized ? new QGaLoreOptions { Patience = 1 } : null,
        };
        double[] w = Gaussian(16 * 24, seed: 8);
        using Parameter p = NewParameter(w, 16, 24, ScalarType.Float32), bias = new(torch.zeros(24));
        using var optimizer = new GaLoreAdamW([("w", p), ("bias", bias)], options);
        void Step(Parameter weight, Parameter b, GaLoreAdamW o, int t)
        {
            SetGradient(weight, Gaussian(16 * 24, seed: 500 + t));
            SetGradient(b, Gaussian(24, seed: 600 + t));
            o.step();
            o.zero_grad();
        }

        for (int t = 1; t <= 3; t++)
        {
            Step(p, bias, optimizer, t);
        }

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            optimizer.save_state_dict(writer);
        }

        using Parameter q = new(p.detach().clone()), biasQ = new(bias.detach().clone());
        using var resumed = new GaLoreAdamW([("w", q), ("bias", biasQ)], options);
        stream.Position = 0;
        using (var reader = new BinaryReader(stream))
        {
            resumed.load_state_dict(reader);
        }

        for (int t = 4; t <= 7; t++)
        {
            Step(p, bias, optimizer, t);
            Step(q, biasQ, resumed, t);
        }

        Assert.Equal(Values(p), Values(q));
        Assert.Equal(Values(bias), Values(biasQ));
        Assert.Equal(optimizer.ProjectorOf(p)!.Refreshes, resumed.ProjectorOf(q)!.Refreshes);
    }

    private static double[] Identity(int n)
    {
        var identity = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            identity[i * n + i] = 1;
        }

        return identity;
    }
}
