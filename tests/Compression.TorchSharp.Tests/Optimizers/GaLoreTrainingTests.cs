using Compression.TorchSharp.Models;
using Compression.TorchSharp.Optimizers;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Optimizers;

/// <summary>
/// The acceptance run: a small character-level Llama trained from the same initialisation on the same tinyshakespeare
/// batches with AdamW, GaLore and Q-GaLore for the same number of steps and the same learning rate. GaLore and
/// Q-GaLore must end within 5% of AdamW's validation loss while holding the optimizer state the formula predicts.
/// </summary>
[Collection("TorchSharp")]
public class GaLoreTrainingTests(ITestOutputHelper output)
{
    internal const int Steps = 150;
    internal const int Seed = 2026;
    internal const double LearningRate = 1e-2;

    /// <summary>Rank 16 of width-64 matrices, refreshed every 50 steps; α = 1 so that GaLore takes AdamW's learning
    /// rate unchanged (the paper pairs α = 0.25 with a learning rate raised above AdamW's instead).</summary>
    internal static GaLoreOptions Options { get; } = new()
    {
        Rank = 16, UpdateProjectionGap = 50, Scale = 1, LearningRate = LearningRate, WeightDecay = 0, ProjectParameter = GaLoreMemoryTests.DecoderMatrices,
    };

    // The AdamW baseline, trained once for both tests (they run one after the other in the TorchSharp collection).
    private static readonly Lazy<(double Train, double Validation, long StateBytes)> AdamW = new(() =>
    {
        using LlamaForCausalLM model = CharModelTraining.NewModel(Seed);
        using var adamW = torch.optim.AdamW(model.parameters(), lr: LearningRate, weight_decay: 0);
        (double train, double validation) = CharModelTraining.Train(model, adamW, Steps, Seed);
        long bytes = adamW.state_dict().State.Cast<global::TorchSharp.Modules.AdamW.State>()
            .Sum(s => s.exp_avg.NumberOfElements * s.exp_avg.ElementSize + s.exp_avg_sq.NumberOfElements * s.exp_avg_sq.ElementSize);
        return (train, validation, bytes);
    });

    [Fact]
    public void GaLore_ReachesAdamWsLoss_Within5Percent_WithTheFormulasMemory() => Compare("GaLore", Options);

    [Fact]
    public void QGaLore_ReachesAdamWsLoss_Within5Percent_WithTheFormulasMemory() =>
        Compare("Q-GaLore", Options with { Quantization = new QGaLoreOptions() });

    private void Compare(string label, GaLoreOptions options)
    {
        (double adamTrain, double adamLoss, long adamBytes) = AdamW.Value;
        using LlamaForCausalLM model = CharModelTraining.NewModel(Seed);
        using var galore = new GaLoreAdamW(model.named_parameters(), options);
        (double train, double loss) = CharModelTraining.Train(model, galore, Steps, Seed);
        GaLoreMemoryReport memory = galore.MemoryReport();

        output.WriteLine($"{Steps} steps, batch {CharModelTraining.Batch}×{CharModelTraining.Context}, lr {LearningRate}, seed {Seed}");
        output.WriteLine($"AdamW   : train {adamTrain:F4}  validation {adamLoss:F4}  optimizer state {adamBytes} bytes");
        output.WriteLine($"{label,-8}: train {train:F4}  validation {loss:F4}  optimizer state {memory.StateBytes} bytes " +
            $"(formula {memory.FormulaBytes}, AdamW figure {memory.AdamWBytes}, ratio {memory.RatioToAdamW:F3})");

        Assert.True(adamLoss < 2.6, $"AdamW did not learn: {adamLoss:F4}"); // from ln 65 ≈ 4.17 at initialisation
        Assert.True(loss <= 1.05 * adamLoss, $"{label} {loss:F4} vs AdamW {adamLoss:F4}");
        Assert.Equal(memory.FormulaBytes, memory.StateBytes);
        Assert.Equal(adamBytes, memory.AdamWBytes);
        Assert.True(memory.StateBytes < adamBytes);
    }
}
