using Compression.TorchSharp.Models;
using Compression.TorchSharp.Optimizers;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Optimizers;

/// <summary>
/// The acceptance run: a small character-level Llama trained from the same initialisation on the same tinyshakespeare
/// batches with AdamW, GaLore and Q-GaLore for the same number of steps. GaLore must end within 5% of AdamW's loss
/// while holding the optimizer state the formula predicts.
/// </summary>
[Collection("TorchSharp")]
public class GaLoreTrainingTests(ITestOutputHelper output)
{
    internal const int Steps = 200;
    internal const int Seed = 2026;

    internal static GaLoreOptions Options { get; } = new()
    {
        Rank = 16, UpdateProjectionGap = 50, Scale = 0.25, LearningRate = 1e-2, WeightDecay = 0, ProjectParameter = GaLoreMemoryTests.DecoderMatrices,
    };

    internal const double AdamWLearningRate = 1e-2;

    [Fact]
    public void GaLore_ReachesAdamWsLoss_Within5Percent_WithTheFormulasMemory()
    {
        using LlamaForCausalLM adamModel = CharModelTraining.NewModel(Seed);
        using var adamW = torch.optim.AdamW(adamModel.parameters(), lr: AdamWLearningRate, weight_decay: 0);
        (double adamTrain, double adamLoss) = CharModelTraining.Train(adamModel, adamW, Steps, Seed);
        long adamBytes = adamW.state_dict().State.Cast<global::TorchSharp.Modules.AdamW.State>()
            .Sum(s => s.exp_avg.NumberOfElements * s.exp_avg.ElementSize + s.exp_avg_sq.NumberOfElements * s.exp_avg_sq.ElementSize);

        using LlamaForCausalLM galoreModel = CharModelTraining.NewModel(Seed);
        using var galore = new GaLoreAdamW(galoreModel.named_parameters(), Options);
        (double galoreTrain, double galoreLoss) = CharModelTraining.Train(galoreModel, galore, Steps, Seed);
        GaLoreMemoryReport memory = galore.MemoryReport();

        output.WriteLine($"{Steps} steps, batch {CharModelTraining.Batch}×{CharModelTraining.Context}, seed {Seed}");
        output.WriteLine($"AdamW : train {adamTrain:F4}  validation {adamLoss:F4}  state {adamBytes} bytes");
        output.WriteLine($"GaLore: train {galoreTrain:F4}  validation {galoreLoss:F4}  state {memory.StateBytes} bytes (formula {memory.FormulaBytes}, AdamW figure {memory.AdamWBytes}, ratio {memory.RatioToAdamW:F3})");

        Assert.True(galoreLoss <= 1.05 * adamLoss, $"GaLore {galoreLoss:F4} vs AdamW {adamLoss:F4}");
        Assert.True(adamLoss < 3.0, $"AdamW did not learn: {adamLoss:F4}"); // the initial loss is ln 65 ≈ 4.17
        Assert.Equal(memory.FormulaBytes, memory.StateBytes);
        Assert.Equal(adamBytes, memory.AdamWBytes);
        Assert.True(memory.StateBytes < adamBytes);
    }

    [Fact]
    public void QGaLore_ReachesAdamWsLoss_Within5Percent()
    {
        using LlamaForCausalLM model = CharModelTraining.NewModel(Seed);
        using var qgalore = new GaLoreAdamW(model.named_parameters(), Options with { Quantization = new QGaLoreOptions() });
        (double train, double loss) = CharModelTraining.Train(model, qgalore, Steps, Seed);
        GaLoreMemoryReport memory = qgalore.MemoryReport();
        output.WriteLine($"Q-GaLore: train {train:F4}  validation {loss:F4}  state {memory.StateBytes} bytes (formula {memory.FormulaBytes}, AdamW figure {memory.AdamWBytes})");
        Assert.Equal(memory.FormulaBytes, memory.StateBytes);
        Assert.True(loss < 3.0);
    }
}
