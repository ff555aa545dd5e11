using System.Text.Json;
using Compression.Safetensors;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Tool.Tests;

/// <summary><c>compress prune</c> and <c>compress lowrank</c> on TinyStories-656K: the saved dense checkpoints hold
/// what the commands claim and load again.</summary>
public class PruneLowRankTests
{
    private static readonly string TinyStories = SharedData.File("tinystories-656k");
    private static readonly string Text = SharedData.File("tinystories", "val-sample.txt");

    [Fact]
    public void PruneMagnitude24_KeepsTwoOfEveryFour_AndTheOutputEvaluates()
    {
        using var folder = new TempFolder();
        string output = folder.Combine("2-4");
        JsonElement result = ToolRun.Of("prune", TinyStories, "--method", "magnitude", "--sparsity", "2:4", "--out", output, "--json")
            .AssertSuccess().Json();
        Assert.Equal(14, result.GetProperty("layers_pruned").GetInt32());
        Assert.Equal(0.5, result.GetProperty("layer_sparsity").GetDouble(), 1e-12);

        using (SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(output))
        {
            DenseTensor w = checkpoint.ReadDense("model.layers.1.mlp.down_proj.weight");
            ReadOnlySpan<float> values = w.Span;
            for (int start = 0; start < values.Length; start += 4)
            {
                int zeros = 0;
                for (int i = start; i < start + 4; i++)
                {
                    zeros += values[i] == 0 ? 1 : 0;
                }

                Assert.True(zeros >= 2, $"group at {start} keeps {4 - zeros} of 4");
            }

        }

        JsonElement evaluated = ToolRun.Of("eval", output, "--data", Text, "--max-tokens", "510", "--json").AssertSuccess().Json();
        Assert.True(double.IsFinite(evaluated.GetProperty("perplexity").GetDouble()));
    }

    [Fact]
    public void LowRank_FixedRank_SavesTheReconstructionOfThatRank()
    {
        using var folder = new TempFolder();
        string output = folder.Combine("rank16");
        JsonElement result = ToolRun.Of("lowrank", TinyStories, "--rank", "16", "--out", output, "--json").AssertSuccess().Json();
        Assert.All(result.GetProperty("layers").EnumerateArray(), l => Assert.Equal(16, l.GetProperty("rank").GetInt32()));
        Assert.Equal(656_000, result.GetProperty("parameters").GetInt64());
        Assert.True(result.GetProperty("parameters_if_factored").GetInt64() < 656_000);

        // A rank-16 matrix: the 17th singular value of q_proj is float noise next to the first (Gram eigenvalues).
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(output);
        DenseTensor q = checkpoint.ReadDense("model.layers.0.self_attn.q_proj.weight");
        var gram = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(q.Columns, q.Columns);
        for (int i = 0; i < q.Columns; i++)
        {
            for (int j = 0; j < q.Columns; j++)
            {
                double sum = 0;
                for (int r = 0; r < q.Rows; r++)
                {
                    sum += (double)q[r, i] * q[r, j];
                }

                gram[i, j] = sum;
            }
        }

        double[] eigenvalues = gram.Evd().EigenValues.Select(e => e.Real).OrderDescending().ToArray();
        Assert.True(eigenvalues[16] < 1e-8 * eigenvalues[0], $"λ17/λ1 = {eigenvalues[16] / eigenvalues[0]}");
        Assert.True(eigenvalues[15] > 1e-4 * eigenvalues[0]);
    }
}
