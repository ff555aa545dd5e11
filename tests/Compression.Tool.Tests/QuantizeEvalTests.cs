using System.Text.Json;
using System.Text.Json.Nodes;
using Compression.Quantization;
using Compression.Testing;
using Compression.Text;
using Compression.TorchSharp;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;

namespace Compression.Tool.Tests;

/// <summary>
/// The tool's main path on TinyStories-656K: GPTQ INT4 with calibration windows from the validation sample, the output
/// inspected and evaluated by the tool, and the perplexity compared with the library run directly on the same data.
/// </summary>
public class QuantizeEvalTests
{
    private const int Samples = 8, SequenceLength = 256, EvalTokens = 1020;
    private static readonly string TinyStories = SharedData.File("tinystories-656k");
    private static readonly string Text = SharedData.File("tinystories", "val-sample.txt");

    [Fact]
    public void QuantizeW4A16Gptq_ThenInspectAndEval_MatchesTheLibrary()
    {
        using var folder = new TempFolder();
        string output = folder.Combine("w4a16-gptq");
        JsonElement quantized = ToolRun.Of("quantize", TinyStories, "--scheme", "w4a16-gptq", "--calib", Text,
            "--samples", $"{Samples}", "--seq-len", $"{SequenceLength}", "--out", output, "--json").AssertSuccess().Json();
        Assert.Equal("gptq", quantized.GetProperty("method").GetString());
        Assert.Equal(14, quantized.GetProperty("layers_quantized").GetInt32());          // 7 linear layers × 2 blocks
        Assert.Equal(Samples, quantized.GetProperty("calibration_samples").GetInt32());
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(TinyStories, file)), File.ReadAllBytes(Path.Combine(output, file)));
        }

        // config.json: the source config plus a compressed-tensors quantization_config for INT4 groups of 128.
        JsonObject config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!;
        Assert.Equal(128, config["hidden_size"]!.GetValue<int>());
        JsonObject q = config["quantization_config"]!.AsObject();
        Assert.Equal("compressed-tensors", q["quant_method"]!.GetValue<string>());
        Assert.Equal("pack-quantized", q["format"]!.GetValue<string>());
        Assert.Equal("compressed", q["quantization_status"]!.GetValue<string>());
        Assert.Equal(["lm_head"], q["ignore"]!.AsArray().Select(i => i!.GetValue<string>()));
        JsonObject group = q["config_groups"]!.AsObject().Single().Value!.AsObject();
        Assert.Equal(14, group["targets"]!.AsArray().Count);
        JsonObject weights = group["weights"]!.AsObject();
        Assert.Equal(4, weights["num_bits"]!.GetValue<int>());
        Assert.Equal("int", weights["type"]!.GetValue<string>());
        Assert.Equal("group", weights["strategy"]!.GetValue<string>());
        Assert.Equal(128, weights["group_size"]!.GetValue<int>());
        Assert.True(weights["symmetric"]!.GetValue<bool>());
        Assert.Null(group["input_activations"]);

        JsonElement inspected = ToolRun.Of("inspect", output, "--json").AssertSuccess().Json();
        Assert.Equal("compressed-tensors (pack-quantized)", inspected.GetProperty("format").GetString());
        Assert.Equal("W4A16", inspected.GetProperty("quantization").GetProperty("groups")[0].GetProperty("scheme").GetString());
        Assert.Equal(656_000, inspected.GetProperty("parameters").GetInt64());   // packed weights counted by their logical shape
        Assert.Contains("weight_packed", inspected.GetProperty("compressed_tensor_suffixes").EnumerateArray().Select(s => s.GetString()));

        JsonElement evaluated = ToolRun.Of("eval", output, "--data", Text, "--max-tokens", $"{EvalTokens}", "--json").AssertSuccess().Json();
        double perplexity = evaluated.GetProperty("perplexity").GetDouble();
        Assert.True(double.IsFinite(perplexity));
        Assert.Equal(4, evaluated.GetProperty("windows").GetInt32());              // BOS + 255 tokens per window
        Assert.Equal(1, evaluated.GetProperty("bos").GetInt32());

        // The library on the same calibration windows and tokens: the saved, reloaded model scores the same.
        var tokenizer = BpeTokenizer.FromHuggingFaceJson(Path.Combine(TinyStories, "tokenizer.json"));
        int[] ids = tokenizer.Encode(File.ReadAllText(Text));
        int[][] calibration = Enumerable.Range(0, Samples)
            .Select(i => (int[])[1, .. ids.AsSpan(i * (SequenceLength - 1), SequenceLength - 1)]).ToArray();
        using CausalLanguageModel model = HuggingFaceModels.Load(TinyStories);
        LanguageModelScore original = LanguageModelEvaluator.EvaluateWithBos(model, ids.AsSpan(0, EvalTokens), 256, bos: 1);
        Quantizer.Apply(model, QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq }, calibration);
        LanguageModelScore library = LanguageModelEvaluator.EvaluateWithBos(model, ids.AsSpan(0, EvalTokens), 256, bos: 1);
        Assert.Equal(library.Loss, evaluated.GetProperty("loss").GetDouble(), 1e-9);
        Assert.Equal(library.PredictedTokens, evaluated.GetProperty("scored_tokens").GetInt64());
        // INT4 g128 GPTQ costs little on this model (5% on 2,040 tokens with this calibration): within 12% of float32.
        Assert.InRange(perplexity / original.Perplexity, 0.98, 1.12);
    }

    [Fact]
    public void QuantizeRtnStreamed_ThenEval_LoadsTheCompressedCheckpoint()
    {
        using var folder = new TempFolder();
        string output = folder.Combine("nvfp4");
        JsonElement quantized = ToolRun.Of("quantize", TinyStories, "--scheme", "nvfp4", "--out", output, "--json").AssertSuccess().Json();
        Assert.Equal("rtn", quantized.GetProperty("method").GetString());
        JsonObject q = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["quantization_config"]!.AsObject();
        Assert.Equal("nvfp4-pack-quantized", q["format"]!.GetValue<string>());

        JsonElement evaluated = ToolRun.Of("eval", output, "--data", Text, "--max-tokens", $"{EvalTokens}", "--json").AssertSuccess().Json();
        JsonElement baseline = ToolRun.Of("eval", TinyStories, "--data", Text, "--max-tokens", $"{EvalTokens}", "--json").AssertSuccess().Json();
        double ratio = evaluated.GetProperty("perplexity").GetDouble() / baseline.GetProperty("perplexity").GetDouble();
        Assert.InRange(ratio, 1.0, 1.5);                  // 4-bit floats lose something on a 656K-parameter model
    }

    [Fact]
    public void QuantizeW8A8Fp8_DeclaresDynamicPerTokenActivations_AndEvalSimulatesThem()
    {
        using var folder = new TempFolder();
        string fp8 = folder.Combine("fp8"), w8a8 = folder.Combine("w8a8-fp8");
        ToolRun.Of("quantize", TinyStories, "--scheme", "fp8", "--out", fp8, "--json").AssertSuccess();
        ToolRun run = ToolRun.Of("quantize", TinyStories, "--scheme", "w8a8-fp8", "--out", w8a8, "--json").AssertSuccess();
        Assert.DoesNotContain("warning", run.Stderr, StringComparison.OrdinalIgnoreCase);

        // The group declares compressed-tensors' FP8_DYNAMIC activations; fp8 stays weight-only; the weights are the same.
        JsonObject group = JsonNode.Parse(File.ReadAllText(Path.Combine(w8a8, "config.json")))!["quantization_config"]!["config_groups"]!
            .AsObject().Single().Value!.AsObject();
        Assert.Equal("float-quantized", group["format"]!.GetValue<string>());
        JsonObject activations = group["input_activations"]!.AsObject();
        Assert.Equal(8, activations["num_bits"]!.GetValue<int>());
        Assert.Equal("float", activations["type"]!.GetValue<string>());
        Assert.Equal("token", activations["strategy"]!.GetValue<string>());
        Assert.True(activations["dynamic"]!.GetValue<bool>());
        Assert.True(activations["symmetric"]!.GetValue<bool>());
        Assert.Null(group["output_activations"]);
        JsonObject fp8Group = JsonNode.Parse(File.ReadAllText(Path.Combine(fp8, "config.json")))!["quantization_config"]!["config_groups"]!
            .AsObject().Single().Value!.AsObject();
        Assert.Null(fp8Group["input_activations"]);
        Assert.Equal(File.ReadAllBytes(Path.Combine(fp8, "model.safetensors")), File.ReadAllBytes(Path.Combine(w8a8, "model.safetensors")));
        Assert.Equal("FP8_DYNAMIC", ToolRun.Of("inspect", w8a8, "--json").AssertSuccess().Json()
            .GetProperty("quantization").GetProperty("groups")[0].GetProperty("scheme").GetString());

        // Eval loads it and simulates the FP8 activations: finite, close to fp8's, but not the same number (the
        // activations really are rounded).
        double withActivations = ToolRun.Of("eval", w8a8, "--data", Text, "--max-tokens", $"{EvalTokens}", "--json").AssertSuccess().Json()
            .GetProperty("perplexity").GetDouble();
        double weightsOnly = ToolRun.Of("eval", fp8, "--data", Text, "--max-tokens", $"{EvalTokens}", "--json").AssertSuccess().Json()
            .GetProperty("perplexity").GetDouble();
        Console.WriteLine($"tinystories-656k, {EvalTokens} tokens: fp8 perplexity {weightsOnly:F4}, w8a8-fp8 {withActivations:F4}");
        Assert.True(double.IsFinite(withActivations));
        Assert.NotEqual(weightsOnly, withActivations);
        Assert.InRange(withActivations / weightsOnly, 0.97, 1.05);
    }

    [Fact]
    public void Eval_CharacterModel_WithMetaJsonVocabulary()
    {
        // The shakespeare-char protocol on the first 4 windows of the corpus's validation split (the last 10%).
        string corpus = File.ReadAllText(SharedData.File("tinyshakespeare", "input.txt"));
        using var folder = new TempFolder();
        string validation = folder.Combine("val.txt");
        File.WriteAllText(validation, corpus[(int)(corpus.Length * 0.9)..]);
        JsonElement evaluated = ToolRun.Of("eval", SharedData.File("llama-shakespeare-char"), "--data", validation, "--tokenizer",
            SharedData.File("meta.json"), "--max-tokens", "1025", "--json").AssertSuccess().Json();
        Assert.Equal("char", evaluated.GetProperty("tokenizer").GetString());
        Assert.Equal(4, evaluated.GetProperty("windows").GetInt32());
        // The model's loss on the whole split is 1.48 nats; chance (65 characters) would be ln 65 = 4.17.
        Assert.InRange(evaluated.GetProperty("loss").GetDouble(), 1.0, 2.0);
    }
}
