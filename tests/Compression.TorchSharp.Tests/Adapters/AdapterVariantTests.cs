using Compression.TorchSharp.Adapters;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Adapters;

/// <summary>VeRA, DyLoRA and AdaLoRA on single layers.</summary>
[Collection("TorchSharp")]
public class AdapterVariantTests(ITestOutputHelper output)
{
    // As in LoraLinearTests: float32 passes over unit-scale inputs sit within ~1e-6 of float64; 1e-4 catches formula errors.
    private const double Tolerance = 1e-4;

    private static double MaxDifference(Tensor a, Tensor b)
    {
        using Tensor difference = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return difference.item<double>();
    }

    private static void Randomize(Tensor parameter, int seed, double scale)
    {
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)seed);
        using Tensor noise = torch.randn(parameter.shape, ScalarType.Float32, generator: generator);
        parameter.copy_(noise * scale);
    }

    [Fact]
    public void Vera_AtInit_LeavesOutputsUnchanged_AndMatchesTheFloat64FormulaOnceTrained()
    {
        using Linear reference = LoraLinearTests.Dense(48, 40, 1), wrapped = LoraLinearTests.Dense(48, 40, 1);
        using var projections = new VeraProjections(8, 64, 56, seed: 3);
        using var vera = new VeraLinear(wrapped, projections, new LoraOptions { Rank = 8 });
        using Tensor x = LoraLinearTests.Inputs(4, 48, 2);
        using (Tensor expected = reference.call(x), actual = vera.call(x))
        {
            Assert.True(expected.eq(actual).all().item<bool>());
        }

        Assert.Equal(8 + 40, vera.TrainableParameterCount);
        Assert.Equal(0.1f, vera.LambdaD[0].item<float>());
        Randomize(vera.LambdaB, 4, 1.0);
        Randomize(vera.LambdaD, 5, 1.0);
        using var scope = NewDisposeScope();
        Tensor a = projections.A.narrow(1, 0, 48).to(ScalarType.Float64), b = projections.B.narrow(0, 0, 40).to(ScalarType.Float64);
        Tensor delta = torch.diag(vera.LambdaB.detach().to(ScalarType.Float64)).matmul(b).matmul(torch.diag(vera.LambdaD.detach().to(ScalarType.Float64))).matmul(a);
        Assert.True(MaxDifference(delta, vera.DeltaWeight()) < 1e-6);
        Tensor y = x.to(ScalarType.Float64).matmul((reference.weight!.detach().to(ScalarType.Float64) + delta).t()) + reference.bias!.detach().to(ScalarType.Float64);
        Assert.True(MaxDifference(y, vera.call(x)) < Tolerance);
        vera.Merge();
        Assert.True(MaxDifference(y, vera.call(x)) < Tolerance);
    }

    [Fact]
    public void Vera_ProjectionsNarrowerThanTheLayer_AreRejected()
    {
        using var projections = new VeraProjections(4, 32, 32, seed: 0);
        var e = Assert.Throws<ArgumentException>("projections", () => new VeraLinear(LoraLinearTests.Dense(48, 16, 1), projections, new LoraOptions { Rank = 4 }));
        Assert.Contains("this layer needs [16, 48]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DyLora_TruncatedToAnyRank_EqualsLoraBuiltFromTheLeadingComponents()
    {
        const int maxRank = 8;
        using Linear dyBase = LoraLinearTests.Dense(48, 40, 6);
        using var dyLora = new DyLoraLinear(dyBase, new LoraOptions { Rank = maxRank, Alpha = 16 });
        Randomize(dyLora.LoraB, 7, 0.1);
        dyLora.eval();
        using Tensor x = LoraLinearTests.Inputs(4, 48, 8);
        foreach (int rank in new[] { 1, 3, 8 })
        {
            dyLora.ActiveRank = rank;
            using var lora = new LoraLinear(LoraLinearTests.Dense(48, 40, 6), new LoraOptions { Rank = rank, Alpha = 16 });
            using (torch.no_grad())
            {
                lora.LoraA.copy_(dyLora.LoraA.narrow(0, 0, rank));
                lora.LoraB.copy_(dyLora.LoraB.narrow(1, 0, rank));
            }

            Assert.Equal(16.0 / rank, lora.Scale);
            using Tensor expected = lora.call(x), actual = dyLora.call(x);
            // Same operations on the same values; only the memory layout of the truncated views differs, which can
            // change the summation order inside the matrix product by a few ulps.
            Assert.True(MaxDifference(expected, actual) < 1e-5, $"rank {rank}: {MaxDifference(expected, actual)}");
            using Tensor loraDelta = lora.DeltaWeight(), dyDelta = dyLora.DeltaWeight();
            Assert.True(MaxDifference(loraDelta, dyDelta) < 1e-6);
        }

        Assert.Throws<ArgumentOutOfRangeException>("ActiveRank", () => dyLora.ActiveRank = maxRank + 1);
        Assert.Throws<ArgumentOutOfRangeException>("ActiveRank", () => dyLora.ActiveRank = 0);
    }

    [Fact]
    public void DyLora_Training_SamplesEveryRankFromOneToR_AndTrainsOnlyTheSampledBlock()
    {
        using var dyLora = new DyLoraLinear(LoraLinearTests.Dense(16, 16, 9), new LoraOptions { Rank = 6, Alpha = 6 }, seed: 11);
        Randomize(dyLora.LoraB, 12, 0.1);
        dyLora.train();
        var seen = new HashSet<int>();
        using Tensor x = LoraLinearTests.Inputs(2, 16, 13);
        for (int i = 0; i < 60; i++)
        {
            using Tensor y = dyLora.call(x);
            seen.Add(dyLora.LastSampledRank);
        }

        Assert.Equal(Enumerable.Range(1, 6), seen.Order());
        dyLora.zero_grad();
        using (Tensor y = dyLora.call(x))
        using (Tensor loss = y.pow(2).sum())
        {
            loss.backward();
        }

        int sampled = dyLora.LastSampledRank;
        using Tensor rowGradients = dyLora.LoraA.grad!.abs().sum(1);
        for (int k = 0; k < 6; k++)
        {
            Assert.Equal(k < sampled, rowGradients[k].item<float>() > 0);
        }
    }

    [Fact]
    public void AdaLora_AtInit_LeavesOutputsUnchanged_AndItsPenaltyMatchesTheFloat64Formula()
    {
        using Linear reference = LoraLinearTests.Dense(24, 20, 14), wrapped = LoraLinearTests.Dense(24, 20, 14);
        using var ada = new AdaLoraLinear(wrapped, new LoraOptions { Method = AdapterMethod.AdaLora, Rank = 6, Alpha = 6 });
        using Tensor x = LoraLinearTests.Inputs(2, 24, 15);
        using (Tensor expected = reference.call(x), actual = ada.call(x))
        {
            Assert.True(expected.eq(actual).all().item<bool>());
        }

        using var scope = NewDisposeScope();
        Tensor p = ada.P.detach().to(ScalarType.Float64), q = ada.Q.detach().to(ScalarType.Float64), eye = torch.eye(6, dtype: ScalarType.Float64);
        double expectedPenalty = (p.t().matmul(p) - eye).pow(2).sum().item<double>() + (q.matmul(q.t()) - eye).pow(2).sum().item<double>();
        Tensor penalty = ada.OrthogonalityPenalty();
        Assert.Equal(expectedPenalty, penalty.item<float>(), expectedPenalty * 1e-5);
        penalty.backward();
        Assert.True(ada.P.grad!.abs().sum().item<float>() > 0 && ada.Q.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void AdaLora_Budget_FollowsTheCubicSchedule()
    {
        var options = new AdaLoraOptions { TargetRank = 2, TotalSteps = 100, InitialWarmup = 10, FinalWarmup = 20 };
        using var layers = new DisposableList(Enumerable.Range(0, 3).Select(i => new AdaLoraLinear(LoraLinearTests.Dense(16, 16, i), new LoraOptions { Rank = 8 })));
        var allocator = new AdaLoraRankAllocator(layers.Items, options);
        Assert.Equal(24, allocator.InitialBudget);
        Assert.Equal(6, allocator.TargetBudget);
        Assert.Equal(24, allocator.Budget(1));
        Assert.Equal(24, allocator.Budget(10));
        Assert.Equal(6, allocator.Budget(80));
        Assert.Equal(6, allocator.Budget(100));
        // Halfway through the fall: 6 + 18·(1 − 35/70)³ = 8.25, rounded down.
        Assert.Equal(8, allocator.Budget(45));
        int[] budgets = Enumerable.Range(1, 100).Select(allocator.Budget).ToArray();
        Assert.True(budgets.Zip(budgets.Skip(1)).All(pair => pair.Second <= pair.First));
    }

    [Fact]
    public void AdaLora_Training_ReachesTheTargetBudget_AndMasksTheLeastImportantTriplets()
    {
        torch.manual_seed(16);
        var options = new LoraOptions { Method = AdapterMethod.AdaLora, Rank = 6, Alpha = 6, AdaLora = new AdaLoraOptions { TargetRank = 2, TotalSteps = 60, InitialWarmup = 10, FinalWarmup = 10 } };
        using var layers = new DisposableList(Enumerable.Range(0, 3).Select(i => new AdaLoraLinear(LoraLinearTests.Dense(16, 16, 20 + i), options, seed: i)));
        // Each layer learns an update of a different rank (4, 1, 2), so the importances differ between layers.
        int[] teacherRanks = [4, 1, 2];
        Tensor[] teachers = teacherRanks.Select((r, i) => LoraLinearTests.Inputs(1, 16, 30 + i).reshape(3, 16)[..r].t().matmul(LoraLinearTests.Inputs(1, 16, 40 + i).reshape(3, 16)[..r]) * 0.3).ToArray();
        var allocator = new AdaLoraRankAllocator(layers.Items, options.AdaLora);
        using var optimizer = torch.optim.Adam(layers.Items.SelectMany(l => l.parameters()).Where(p => p.requires_grad), lr: 0.02);
        for (int step = 1; step <= options.AdaLora.TotalSteps; step++)
        {
            using var scope = NewDisposeScope();
            Tensor loss = allocator.OrthogonalRegularization();
            for (int i = 0; i < layers.Items.Length; i++)
            {
                Tensor x = torch.randn(32, 16);
                Tensor target = layers.Items[i].BaseLayer.call(x) + x.matmul(teachers[i].t());
                loss = loss + nn.functional.mse_loss(layers.Items[i].call(x), target);
            }

            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            allocator.Step(step);
        }

        int[] ranks = layers.Items.Select(l => l.ActiveRank).ToArray();
        output.WriteLine($"final ranks {string.Join(", ", ranks)} (teacher ranks {string.Join(", ", teacherRanks)}), budget {allocator.CurrentBudget}");
        Assert.Equal(allocator.TargetBudget, ranks.Sum());
        Assert.Equal(6, allocator.CurrentBudget);
        var kept = new List<double>();
        var masked = new List<double>();
        for (int i = 0; i < layers.Items.Length; i++)
        {
            for (int k = 0; k < 6; k++)
            {
                (layers.Items[i].ActiveTriplets[k] ? kept : masked).Add(allocator.Scores[i][k]);
                if (!layers.Items[i].ActiveTriplets[k])
                {
                    Assert.Equal(0, layers.Items[i].Lambda[k, 0].item<float>());
                }
            }
        }

        Assert.Equal(12, masked.Count);
        Assert.True(masked.Max() <= kept.Min(), $"a masked triplet scores {masked.Max()} above a kept one {kept.Min()}");
        foreach (Tensor teacher in teachers)
        {
            teacher.Dispose();
        }
    }

    [Fact]
    public void AdaLora_TargetAboveInitialRank_IsRejected()
    {
        var e = Assert.Throws<ArgumentException>("options", () => new LoraOptions { Method = AdapterMethod.AdaLora, Rank = 4, AdaLora = new AdaLoraOptions { TargetRank = 5 } }.Validate());
        Assert.Contains("exceeds the initial rank", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>("options", () => new AdaLoraOptions { TotalSteps = 10, InitialWarmup = 5, FinalWarmup = 5 }.Validate());
    }

    private sealed class DisposableList(IEnumerable<AdaLoraLinear> items) : IDisposable
    {
        public AdaLoraLinear[] Items { get; } = items.ToArray();

        public void Dispose()
        {
            foreach (AdaLoraLinear item in Items)
            {
                item.Dispose();
            }
        }
    }
}
