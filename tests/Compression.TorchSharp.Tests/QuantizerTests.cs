using Compression.Quantization;
using Compression.Tensors;
using Compression.Testing;
using Compression.Text;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary><see cref="Quantizer"/> on the shakespeare-char Llama model from ../shared/data.</summary>
[Collection("TorchSharp")]
public class QuantizerTests(ITestOutputHelper output)
{
    /// <summary>The first 96 validation windows (24,576 predictions): enough to separate RTN from GPTQ, quick on 2 cores.</summary>
    private static double Loss(CausalLanguageModel model, int[] validation) =>
        LanguageModelEvaluator.Evaluate(model, validation.AsSpan(0, 96 * 256 + 1), window: 256, batchSize: 32).Loss;

    [Fact]
    public void Gptq_W4A16_OnTheLlamaModel_BeatsRoundToNearest()
    {
        (int[] train, int[] validation) = ShakespeareData.Split();
        // 16 calibration windows of 256 characters spread over the training split.
        int[][] calibration = Enumerable.Range(0, 16).Select(i => train.AsSpan(i * (train.Length / 16), 256).ToArray()).ToArray();

        using CausalLanguageModel baseline = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        double bf16 = Loss(baseline, validation);

        using CausalLanguageModel rtnModel = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        QuantizationReport rtn = Quantizer.Apply(rtnModel, QuantizerOptions.W4A16);
        double rtnLoss = Loss(rtnModel, validation);

        using CausalLanguageModel gptqModel = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        var progress = new List<CompressionProgress>();
        QuantizationReport gptq = Quantizer.Apply(gptqModel, QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq, Gptq = new GptqOptions { ActOrder = true } },
            calibration, new Recorder(progress));
        double gptqLoss = Loss(gptqModel, validation);

        output.WriteLine($"loss: BF16 {bf16:F4}, RTN W4A16 {rtnLoss:F4} ({rtn.Elapsed.TotalSeconds:F1} s), GPTQ W4A16 act-order {gptqLoss:F4} ({gptq.Elapsed.TotalSeconds:F1} s); " +
                         $"{gptq.CompressedBits / 8e6:F2} MB of {gptq.OriginalBits / 8e6:F2} MB");
        Assert.Equal(42, rtn.Layers.Count);                                   // 6 layers × (q, k, v, o, gate, up, down); the head ignored
        Assert.Equal(42, gptq.Layers.Count);
        Assert.DoesNotContain(gptq.Layers, l => l.Name == "lm_head");
        Assert.All(gptq.Layers, l => Assert.True(l.Method == QuantizationMethod.Gptq && double.IsFinite(l.Objective)));
        Assert.All(rtn.Layers, l => Assert.Equal(4 + 32.0 / 128, l.BitsPerWeight, 9));
        Assert.Equal(42, progress.Count);
        Assert.True(rtnLoss > bf16, "RTN INT4 should cost some loss");
        Assert.True(gptqLoss < rtnLoss, $"GPTQ {gptqLoss:F4} should beat RTN {rtnLoss:F4}");
        Assert.True(gptq.CompressionRatio > 2);
    }

    [Fact]
    public void RoundToNearest_ReplacesEachWeightByItsDequantizedValue_AndHonoursOverrides()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        DenseTensor q0 = Weight(model, "model.layers.0.self_attn.q_proj");
        DenseTensor down0 = Weight(model, "model.layers.0.mlp.down_proj");
        DenseTensor head = Weight(model, "lm_head");
        var options = QuantizerOptions.W4A16 with { Overrides = [new("re:.*self_attn.*", RtnOptions.Fp8PerChannel)] };
        QuantizationReport report = Quantizer.Apply(model, options);
        Assert.Equal(42, report.Layers.Count);

        Assert.Equal(RtnOptions.Fp8PerChannel.CreateCompressor().Quantize(q0).Decompress().Span.ToArray(), Weight(model, "model.layers.0.self_attn.q_proj").Span.ToArray());
        Assert.Equal(RtnOptions.W4Group128.CreateCompressor().Quantize(down0).Decompress().Span.ToArray(), Weight(model, "model.layers.0.mlp.down_proj").Span.ToArray());
        Assert.Equal(head.Span.ToArray(), Weight(model, "lm_head").Span.ToArray());     // ignored by default
        Assert.StartsWith("fp8-e4m3", report.Layers.Single(l => l.Name == "model.layers.0.self_attn.q_proj").Format, StringComparison.Ordinal);
        Assert.StartsWith("int4", report.Layers.Single(l => l.Name == "model.layers.0.mlp.down_proj").Format, StringComparison.Ordinal);
        Assert.True(double.IsNaN(report.Layers[0].Objective));
    }

    [Fact]
    public void BadInputs_GiveClearErrors()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        var typo = Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, QuantizerOptions.W8A16 with { Targets = ["*.mlp.gate_projj"] }));
        Assert.Contains("gate_projj", typo.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, QuantizerOptions.W8A16 with { Overrides = [new("nothing", RtnOptions.Fp8PerChannel)] }));
        Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, QuantizerOptions.W8A16 with { Ignore = ["Linear"] }));
        var gptq = QuantizerOptions.W8A16 with { Method = QuantizationMethod.Gptq };
        Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, gptq));
        Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, gptq, []));
        Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, gptq, [new int[513]]));
        Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, gptq, [[1, 2, 4096]]));
        Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, gptq, [Array.Empty<int>()]));
        Assert.Throws<ArgumentException>(() => QuantizerOptions.W8A16 with { Targets = ["re:("] });
        Assert.Throws<ArgumentException>(() => QuantizerOptions.Preset("W5A16"));
        Assert.Same(QuantizerOptions.Nvfp4A16, QuantizerOptions.Preset("nvfp4a16"));
        // Options the format cannot take fail at the first layer, before any weight changes.
        Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, QuantizerOptions.W8A16 with { Quantization = RtnOptions.Mxfp4 with { Granularity = Granularity.PerChannel } }));
    }

    [Fact]
    public void GlobAndRegexPatterns_MatchWholeNames()
    {
        Assert.True(QuantizerOptions.Matches("Linear", "model.layers.0.mlp.up_proj"));
        Assert.True(QuantizerOptions.Matches("*.mlp.*", "model.layers.0.mlp.up_proj"));
        Assert.False(QuantizerOptions.Matches("mlp", "model.layers.0.mlp.up_proj"));
        Assert.True(QuantizerOptions.Matches("re:model\\.layers\\.[0-2]\\..*", "model.layers.2.self_attn.q_proj"));
        Assert.False(QuantizerOptions.Matches("re:model\\.layers\\.[0-2]\\..*", "model.layers.3.self_attn.q_proj"));
        Assert.True(QuantizerOptions.Matches("model.layers.?.mlp.down_proj", "model.layers.7.mlp.down_proj"));
    }

    private static DenseTensor Weight(CausalLanguageModel model, string module) =>
        model.named_parameters().Single(p => p.name == module + ".weight").parameter.ToDenseTensor();
}
