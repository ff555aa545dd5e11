using Compression.Quantization;
using Compression.Testing;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary>
/// <c>Module.to(dtype)</c> replaces every parameter object; a module that kept the old object in a field went on using
/// a disposed tensor ("empty handle"). These tests convert the real checkpoints and compare logits with float32.
/// </summary>
[Collection("TorchSharp")]
public class ModelDtypeTests(ITestOutputHelper output)
{
    public static TheoryData<string, ScalarType, double> Conversions() => new()
    {
        // bfloat16 keeps 8 significant bits: every weight and activation rounds by up to 2^-9 relative, and the
        // errors of a few layers compound; 5% of the largest logit is a loose bound that still fails on garbage.
        { "tinystories-656k", ScalarType.BFloat16, 0.05 },
        { "llama-shakespeare-char", ScalarType.BFloat16, 0.05 },
        { "gpt2-shakespeare-char", ScalarType.BFloat16, 0.05 },
        // float64 only removes float32 rounding: differences are float32's accumulated error, far below 1e-4.
        { "tinystories-656k", ScalarType.Float64, 1e-4 },
        { "gpt2-shakespeare-char", ScalarType.Float64, 1e-4 },
        { "tinystories-656k", ScalarType.Float16, 0.02 },
    };

    [Theory]
    [MemberData(nameof(Conversions))]
    public void To_Dtype_ConvertsEveryParameter_AndKeepsTheLogits(string folder, ScalarType dtype, double tolerance)
    {
        using CausalLanguageModel reference = HuggingFaceModels.Load(SharedData.File(folder));
        using CausalLanguageModel converted = HuggingFaceModels.Load(SharedData.File(folder));
        converted.to(dtype);
        Assert.All(converted.parameters(), p => Assert.Equal(dtype, p.dtype));

        using var scope = NewDisposeScope();
        var generator = new Random(20261202);
        long[] ids = Enumerable.Range(0, 2 * 48).Select(_ => (long)generator.Next(converted.VocabularySize)).ToArray();
        Tensor input = torch.tensor(ids, [2, 48]);
        using (torch.no_grad())
        {
            Tensor expected = reference.forward(input);
            Tensor actual = converted.forward(input);
            Assert.Equal(dtype, actual.dtype);
            double scale = expected.abs().max().item<float>();
            double difference = (actual.to(ScalarType.Float32) - expected).abs().max().item<float>();
            output.WriteLine($"{folder} as {dtype}: max |Δlogit| = {difference:G4}, max |logit| = {scale:G4}");
            Assert.True(difference <= tolerance * scale, $"max |Δlogit| {difference} exceeds {tolerance} × {scale}.");
        }
    }

    [Fact]
    public void RmsNorm_AfterTo_ExposesTheConvertedWeight()
    {
        using var norm = new RmsNorm(8, 1e-5);
        norm.to(ScalarType.Float64);
        Assert.Equal(ScalarType.Float64, norm.Weight.dtype);
        using Tensor x = torch.linspace(-1, 1, 16, dtype: ScalarType.Float64).reshape(2, 8);
        using Tensor y = norm.forward(x);
        Assert.Equal(ScalarType.Float64, y.dtype);
        // Weight 1: y = x / sqrt(mean(x²) + ε), computed here in float64 by hand.
        double[] values = x.data<double>().ToArray();
        for (int r = 0; r < 2; r++)
        {
            double mean = values.Skip(8 * r).Take(8).Average(v => v * v);
            for (int c = 0; c < 8; c++)
            {
                Assert.Equal(values[8 * r + c] / Math.Sqrt(mean + 1e-5), y[r, c].item<double>(), 1e-12);
            }
        }
    }

    public static TheoryData<string> Wrappers() => ["packed-int4", "lora", "dora", "adalora", "dylora", "vera"];

    /// <summary>
    /// Packed quantized layers and every adapter kind survive <c>to(bfloat16)</c>: they compute in the activations'
    /// dtype (a float32 weight against bfloat16 activations aborts libtorch's process, not just the call) and keep using
    /// the converted parameters. Compared with the same model in float32.
    /// </summary>
    [Theory]
    [MemberData(nameof(Wrappers))]
    public void To_BFloat16_WorksForPackedAndAdaptedModels(string wrapper)
    {
        CausalLanguageModel Build()
        {
            CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
            switch (wrapper)
            {
                case "packed-int4":
                    Quantizer.Pack(model, Quantizer.Apply(model, QuantizerOptions.W4A16 with { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) } }));
                    break;
                default:
                    AdapterMethod method = wrapper switch
                    {
                        "adalora" => AdapterMethod.AdaLora,
                        "dylora" => AdapterMethod.DyLora,
                        "vera" => AdapterMethod.Vera,
                        _ => AdapterMethod.Lora,
                    };
                    Lora.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, Method = method, UseDora = wrapper == "dora" });
                    // Make the adapters contribute: B (or λ_b) starts at zero, so nudge every trainable parameter.
                    using (torch.no_grad())
                    {
                        var generator = new Random(7);
                        foreach (var p in model.parameters().Where(p => p.requires_grad))
                        {
                            p.add_(torch.full(p.shape, 0.01 * (generator.NextDouble() + 0.5), p.dtype));
                        }
                    }

                    break;
            }

            return model;
        }

        using CausalLanguageModel reference = Build();
        using CausalLanguageModel converted = Build();
        converted.to(ScalarType.BFloat16);
        Assert.All(converted.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        using var scope = NewDisposeScope();
        Tensor input = torch.arange(1, 49, dtype: ScalarType.Int64).reshape(1, 48);
        using (torch.no_grad())
        {
            Tensor expected = reference.forward(input);
            Tensor actual = converted.forward(input);
            Assert.Equal(ScalarType.BFloat16, actual.dtype);
            double scale = expected.abs().max().item<float>();
            double difference = (actual.to(ScalarType.Float32) - expected).abs().max().item<float>();
            output.WriteLine($"{wrapper} as BFloat16: max |Δlogit| = {difference:G4}, max |logit| = {scale:G4}");
            // bfloat16 rounding of weights and activations, as above.
            Assert.True(difference <= 0.05 * scale, $"max |Δlogit| {difference} exceeds 0.05 × {scale}.");
        }
    }
}
