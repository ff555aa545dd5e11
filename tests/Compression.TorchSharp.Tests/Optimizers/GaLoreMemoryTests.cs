using Compression.TorchSharp.Models;
using Compression.TorchSharp.Optimizers;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Optimizers;

/// <summary>The memory report measures the state tensors actually held, and they are what the paper's formula says.</summary>
[Collection("TorchSharp")]
public class GaLoreMemoryTests
{
    // The paper's choice: the attention and MLP matrices, not the embedding or the head.
    internal static bool DecoderMatrices(string name, Tensor parameter) => name.Contains(".layers.", StringComparison.Ordinal) && parameter.dim() == 2;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MeasuredState_EqualsTheFormula_AndAdamWsFigureIsWhatAdamWHolds(bool quantized)
    {
        var options = new GaLoreOptions
        {
            Rank = 16, ProjectParameter = DecoderMatrices, Quantization = quantized ? new QGaLoreOptions() : null,
        };
        using LlamaForCausalLM model = CharModelTraining.NewModel(seed: 1);
        using var galore = new GaLoreAdamW(model.named_parameters(), options);
        CharModelTraining.Train(model, galore, steps: 1, seed: 1, evaluate: false);
        GaLoreMemoryReport report = galore.MemoryReport();

        using LlamaForCausalLM twin = CharModelTraining.NewModel(seed: 1);
        using var adamW = torch.optim.AdamW(twin.parameters());
        CharModelTraining.Train(twin, adamW, steps: 1, seed: 1, evaluate: false);
        long adamWHeld = adamW.state_dict().State.Cast<global::TorchSharp.Modules.AdamW.State>()
            .Sum(s => s.exp_avg.NumberOfElements * s.exp_avg.ElementSize + s.exp_avg_sq.NumberOfElements * s.exp_avg_sq.ElementSize);

        Assert.Equal(report.FormulaBytes, report.StateBytes);
        Assert.All(report.Parameters, row => Assert.Equal(row.FormulaBytes, row.StateBytes));
        Assert.Equal(adamWHeld, report.AdamWBytes);
        Assert.Equal(14, report.Parameters.Count(r => r.Rank is not null)); // 7 matrices × 2 layers

        // Two rows worked by hand. q_proj is 64×64, projected left: 64·16 projection + 2·64·16 moments.
        GaLoreMemoryRow q = report.Parameters.Single(r => r.Name == "model.layers.0.self_attn.q_proj.weight");
        // INT4 per column: 64·16/2 code bytes + 16 float32 scales.
        Assert.Equal(quantized ? 64 * 16 / 2 + 16 * 4 + 2 * 64 * 16 * 4 : (64 * 16 + 2 * 64 * 16) * 4, q.StateBytes);
        Assert.Equal(2 * 64 * 64 * 4, q.AdamWBytes);
        // gate_proj is 192×64 (m > n), projected right: Q is 64×16, the moments 192×16.
        GaLoreMemoryRow gate = report.Parameters.Single(r => r.Name == "model.layers.1.mlp.gate_proj.weight");
        Assert.False(gate.ProjectsLeft);
        Assert.Equal(quantized ? 64 * 16 / 2 + 16 * 4 + 2 * 192 * 16 * 4 : (64 * 16 + 2 * 192 * 16) * 4, gate.StateBytes);
        Assert.True(report.StateBytes < report.AdamWBytes);
    }
}
