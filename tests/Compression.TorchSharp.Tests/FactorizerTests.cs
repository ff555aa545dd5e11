using Compression.LowRank;
using Compression.Testing;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary><see cref="Factorizer.Apply"/> on the shakespeare-char Llama model.</summary>
[Collection("TorchSharp")]
public class FactorizerTests
{
    private static int[][] Calibration(int count)
    {
        (int[] train, _) = ShakespeareData.Split();
        return Enumerable.Range(0, count).Select(i => train.AsSpan(i * (train.Length / count), 256).ToArray()).ToArray();
    }

    private static double ValidationLoss(CausalLanguageModel model, int windows = 24)
    {
        (_, int[] validation) = ShakespeareData.Split();
        return LanguageModelEvaluator.Evaluate(model, validation.AsSpan(0, windows * 256 + 1), 256).Loss;
    }

    [Fact]
    public void ReplacedModules_ShrinkTheModel_AndComputeWhatTheDenseProductComputes()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        using CausalLanguageModel dense = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        var options = new FactorizerOptions { LowRank = new LowRankOptions { Rank = RankRule.ParameterRatio(0.5) }, Targets = ["*.mlp.*"] };
        var progress = new List<CompressionProgress>();
        FactorizationReport report = Factorizer.Apply(model, options, progress: new Recorder(progress));
        FactorizationReport denseReport = Factorizer.Apply(dense, options with { ReplaceModules = false });

        Assert.Equal(18, report.Layers.Count);
        Assert.Equal(18, progress.Count);
        long saved = report.Layers.Sum(l => (long)l.Rows * l.Columns - l.Parameters);
        Assert.Equal(report.ParametersBefore - saved, report.ParametersAfter);
        Assert.All(report.Layers, l => Assert.True(l.Parameters <= 0.5 * l.Rows * l.Columns));
        Assert.Equal(denseReport.ParametersBefore, denseReport.ParametersAfter);
        Assert.Equal(18, model.CanonicalModules().Count(m => m.Module is LowRankLinear));

        using var noGrad = torch.no_grad();
        (_, int[] validation) = ShakespeareData.Split();
        using Tensor ids = torch.tensor(validation.AsSpan(0, 256).ToArray().Select(i => (long)i).ToArray(), [1, 256]);
        using Tensor a = model.call(ids), b = dense.call(ids);
        // (x·Bᵀ)·Aᵀ versus x·(A·B)ᵀ: the same function rounded in a different order; logits are O(10).
        double difference = (a - b).abs().max().item<float>();
        Assert.True(difference < 1e-3, $"largest logit difference {difference}");
    }

    [Fact]
    public void SvdLlm_LosesLessThanPlainSvd_AtTheSameRanks()
    {
        using CausalLanguageModel plain = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        using CausalLanguageModel aware = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        double baseline = ValidationLoss(plain);
        // The MLP layers only (18 of 42) keep the test short: MathNet's dense SVD is the slow part. 32 windows of 256 (as the sample):
        // with 4 (1,024 tokens) the 1024×1024 Hessian of down_proj is rank-deficient and the whitening overfits them.
        var options = new FactorizerOptions { LowRank = new LowRankOptions { Rank = RankRule.ParameterRatio(0.6) }, Targets = ["*.mlp.*"] };
        Factorizer.Apply(plain, options);
        FactorizationReport report = Factorizer.Apply(aware, options with { LowRank = options.LowRank with { Whitening = ActivationWhitening.Cholesky } }, Calibration(32));
        double lossPlain = ValidationLoss(plain), lossAware = ValidationLoss(aware);
        Console.WriteLine($"dense {baseline:F4}, SVD {lossPlain:F4}, SVD-LLM {lossAware:F4} at {report.ParameterRatio:P1} of the parameters");
        Assert.True(lossAware < lossPlain, $"SVD-LLM {lossAware} vs SVD {lossPlain}");
        Assert.True(lossPlain > baseline);
    }

    [Fact]
    public void GlobalBudget_GivesLayersDifferentRanks_AndMeetsTheBudget()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        FactorizationReport report = Factorizer.Apply(model, new FactorizerOptions { GlobalParameterRatio = 0.6, ReplaceModules = false, Targets = ["*.mlp.*"] });
        long dense = report.Layers.Sum(l => (long)l.Rows * l.Columns);
        Assert.True(report.Layers.Sum(l => l.Parameters) <= 0.6 * dense);
        Assert.True(report.Layers.Select(l => l.Rank).Distinct().Count() > 3, "WeLore should spread ranks");
    }

    [Fact]
    public void BadInput_SaysWhy()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        var aware = new FactorizerOptions { LowRank = new LowRankOptions { Whitening = ActivationWhitening.Eigen } };
        Assert.Contains("calibration", Assert.Throws<ArgumentException>("calibration", () => Factorizer.Apply(model, aware)).Message);
        Assert.Throws<ArgumentException>(() => Factorizer.Apply(model, new FactorizerOptions { Targets = ["*.no_such_layer"] }));
        Assert.Throws<ArgumentOutOfRangeException>("GlobalParameterRatio", () => new FactorizerOptions { GlobalParameterRatio = 0 });
        ArgumentException tooBig = Assert.Throws<ArgumentException>(() =>
            Factorizer.Apply(model, new FactorizerOptions { LowRank = new LowRankOptions { Rank = RankRule.Fixed(500) } }));
        Assert.Contains("min(rows, columns)", tooBig.Message);
    }
}
