using Compression.Testing;
using Compression.TorchSharp.Distillation;
using Compression.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Distillation;

/// <summary>
/// <see cref="CausalLanguageModel.Run"/> on the real checkpoints: logits equal to <c>forward</c> bit for bit, hidden
/// states that the final norm and head turn into those logits, attention maps that are causal distributions.
/// </summary>
[Collection("TorchSharp")]
public class ModelOutputsTests
{
    [Theory]
    [InlineData("tinystories-656k", 2, 128, 8)]
    [InlineData("gpt2-shakespeare-char", 6, 384, 6)]
    public void Run_CapturingEverything_GivesForwardsLogitsBitForBit_AndConsistentHiddenStatesAndAttentions(string folder, int layers, int hidden, int heads)
    {
        const int Batch = 2, Time = 19;
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File(folder));
        Assert.Equal(layers, model.LayerCount);
        Assert.Equal(hidden, model.HiddenSize);
        using Tensor input = randint(0, model.VocabularySize, [Batch, Time], generator: new Generator(17));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor expected = model.forward(input);
        using ModelOutputs all = model.Run(input, OutputCapture.HiddenStates | OutputCapture.Attentions);
        using ModelOutputs logitsOnly = model.Run(input, OutputCapture.Logits);
        Assert.True(Same(expected, all.Logits), "Run's logits differ from forward's");
        Assert.True(Same(expected, logitsOnly.Logits), "Run's logits (no capture) differ from forward's");
        Assert.Empty(logitsOnly.HiddenStates);
        Assert.Empty(logitsOnly.Attentions);

        Assert.Equal(layers + 1, all.HiddenStates.Count);
        Assert.All(all.HiddenStates, h => Assert.Equal([Batch, Time, hidden], h.shape));
        Assert.True(Same(model.Embed(input), all.HiddenStates[0]));
        // The last hidden state is the input of the final norm and head; each one is its block applied to the previous.
        Assert.True(Same(model.Head(all.HiddenStates[^1]), expected));
        for (int i = 0; i < layers; i++)
        {
            Assert.True(Same(model.Blocks[i].Block.call(all.HiddenStates[i]), all.HiddenStates[i + 1]), $"block {i}");
        }

        Assert.Equal(layers, all.Attentions.Count);
        foreach (Tensor attention in all.Attentions)
        {
            Assert.Equal([Batch, heads, Time, Time], attention.shape);
            // Rows are softmax outputs in float32: the sum of ≤ 19 terms is 1 within a few ulps (1e-6 ≫ 19·6e-8).
            Assert.True((attention.sum(-1) - 1).abs().max().item<float>() < 1e-6f);
            Assert.Equal(0f, attention.triu(1).abs().max().item<float>());
        }

        // Different layers attend differently (the capture is not one map repeated).
        Assert.False(Same(all.Attentions[0], all.Attentions[^1]));
        Assert.False(Same(all.HiddenStates[1], all.HiddenStates[2]));
    }

    /// <summary>Same shape and every element equal (bit for bit, as no NaN occurs).</summary>
    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void Run_AttentionsMatchAnIndependentRecomputation_OnTheFirstLlamaBlock()
    {
        // The first block's attention from its own weights: RMSNorm, q/k projections, RoPE, causal softmax, GQA repeat.
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        var config = ((LlamaForCausalLM)model).Config;
        const int Time = 11;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor input = randint(0, model.VocabularySize, [1, Time], generator: new Generator(23));
        using ModelOutputs outputs = model.Run(input, OutputCapture.Attentions);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.to(ScalarType.Float64));
        Tensor x = model.Embed(input).to(ScalarType.Float64)[0];
        Tensor normed = x * (x.square().mean([-1], keepdim: true) + config.RmsNormEpsilon).rsqrt() * parameters["model.layers.0.input_layernorm.weight"];
        int d = config.HeadDimension;
        Tensor q = normed.matmul(parameters["model.layers.0.self_attn.q_proj.weight"].t()).view(Time, config.Heads, d).transpose(0, 1);
        Tensor k = normed.matmul(parameters["model.layers.0.self_attn.k_proj.weight"].t()).view(Time, config.KeyValueHeads, d).transpose(0, 1);
        Tensor inverse = 1.0 / pow(config.RopeTheta, arange(0, d, 2, ScalarType.Float64) / d);
        Tensor angles = outer(arange(0, Time, 1, ScalarType.Float64), inverse);
        Tensor cos = cat([angles, angles], -1).cos(), sin = cat([angles, angles], -1).sin();
        Tensor Rotate(Tensor v) => v * cos + cat([-v.narrow(-1, d / 2, d / 2), v.narrow(-1, 0, d / 2)], -1) * sin;
        q = Rotate(q);
        k = Rotate(k).repeat_interleave(config.Heads / config.KeyValueHeads, 0);
        Tensor scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(d) + triu(full(Time, Time, double.NegativeInfinity, dtype: ScalarType.Float64), 1);
        Tensor expected = scores.softmax(-1);
        // float32 model against a float64 recomputation: probabilities ≤ 1, scores of magnitude ≈ 10 carry ≈ 1e-6
        // absolute error, which the softmax passes through; 1e-5 leaves a margin and catches a wrong head order or RoPE.
        double error = (outputs.Attentions[0][0].to(ScalarType.Float64) - expected).abs().max().ToDouble();
        Assert.True(error < 1e-5, $"max error {error}");
    }

    [Fact]
    public void Run_WithGradients_RecordsThroughHiddenStatesAndAttentions()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        using var scope = NewDisposeScope();
        Tensor input = randint(0, model.VocabularySize, [1, 9], generator: new Generator(29));
        using (ModelOutputs outputs = model.Run(input, OutputCapture.HiddenStates | OutputCapture.Attentions))
        {
            (outputs.HiddenStates[1].square().sum() + outputs.Attentions[1].square().sum()).backward();
        }

        var gradients = model.named_parameters().Where(p => p.parameter.grad is not null && p.parameter.grad.abs().max().item<float>() > 0).Select(p => p.name).ToHashSet();
        Assert.Contains("model.layers.0.mlp.down_proj.weight", gradients);      // reaches hidden state 1
        Assert.Contains("model.layers.1.self_attn.q_proj.weight", gradients);   // reaches attention map 1
        Assert.DoesNotContain("model.layers.1.mlp.down_proj.weight", gradients);
    }

    [Fact]
    public void Run_BadInput_ThrowsNamingInput()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        using Tensor floats = zeros(1, 4), flat = zeros([4], dtype: ScalarType.Int64);
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => model.Run(floats, OutputCapture.Logits)).ParamName);
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => model.Run(flat, OutputCapture.Logits)).ParamName);
    }
}
