using System.Text.Json.Nodes;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>Declared input-activation quantization: the options record, the FP8_DYNAMIC preset, and the
/// compressed-tensors <c>input_activations</c> written and read (dynamic per-token FP8 only; the rest refused).</summary>
public class ActivationQuantizationTests
{
    [Fact]
    public void Defaults_AreDynamicPerTokenFp8()
    {
        ActivationQuantization a = ActivationQuantization.Fp8PerTokenDynamic;
        Assert.Same(NumberFormat.Fp8E4M3, a.Format);
        Assert.Equal(ActivationGranularity.PerToken, a.Granularity);
        Assert.True(a.Dynamic);
        Assert.Equal(a, new ActivationQuantization());
    }

    [Fact]
    public void UnsupportedSettings_AreRefused_NamingTheProperty()
    {
        Assert.Equal("Dynamic", Assert.Throws<ArgumentException>(() => new ActivationQuantization { Dynamic = false }).ParamName);
        Assert.Contains("Static", Assert.Throws<ArgumentException>(() => new ActivationQuantization { Dynamic = false }).Message, StringComparison.Ordinal);
        Assert.Equal("Granularity", Assert.Throws<ArgumentException>(() => new ActivationQuantization { Granularity = ActivationGranularity.PerTensor }).ParamName);
        Assert.Equal("Format", Assert.Throws<ArgumentException>(() => new ActivationQuantization { Format = NumberFormat.Int8 }).ParamName);
        Assert.Equal("Format", Assert.Throws<ArgumentException>(() => new ActivationQuantization { Format = NumberFormat.Fp8E5M2 }).ParamName);
        Assert.Throws<ArgumentNullException>(() => new ActivationQuantization { Format = null! });
    }

    [Theory]
    [InlineData("FP8_DYNAMIC")]
    [InlineData("fp8-dynamic")]
    [InlineData("W8A8_FP8")]
    [InlineData("w8a8-fp8")]
    public void Preset_Fp8Dynamic_IsFp8WeightsPerChannelWithDynamicTokenActivations(string name)
    {
        QuantizerOptions options = QuantizerOptions.Preset(name);
        Assert.Same(QuantizerOptions.W8A8Fp8Dynamic, options);
        Assert.Equal(RtnOptions.Fp8PerChannel, options.Quantization);
        Assert.Same(ActivationQuantization.Fp8PerTokenDynamic, options.InputActivations);
        Assert.Null(QuantizerOptions.Fp8A16.InputActivations);
        Assert.Null(QuantizerOptions.Preset("fp8").InputActivations);
    }

    [Fact]
    public void Writer_DeclaresFp8DynamicActivations_AndTheReaderReadsThemBack()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        CompressedTensor weight = Fp8Weight();
        var writer = new CompressedCheckpointWriter();
        writer.AddQuantized("a", weight, ActivationQuantization.Fp8PerTokenDynamic);
        writer.AddQuantized("b", weight, ActivationQuantization.Fp8PerTokenDynamic);
        writer.AddQuantized("c", weight);
        writer.Save(folder.Path, new JsonObject { ["architectures"] = new JsonArray("Test") }, ["lm_head"]);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!["quantization_config"]!;

        // Two groups: the same weights with and without activations are different schemes.
        var groups = config["config_groups"]!.AsObject().Select(g => g.Value!.AsObject()).ToArray();
        Assert.Equal(2, groups.Length);
        JsonObject w8a8 = groups.Single(g => g["input_activations"] is not null);
        Assert.Equal(["a", "b"], w8a8["targets"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal(["c"], groups.Single(g => g["input_activations"] is null)["targets"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal("float-quantized", config["format"]!.GetValue<string>());
        // compressed-tensors' FP8_DYNAMIC input_activations as QuantizationArgs.model_dump writes them (quant_scheme.py,
        // quant_args.py: dynamic quantization has no observer), key for key and in order.
        Assert.Equal(
            """{"num_bits":8,"type":"float","symmetric":true,"group_size":null,"strategy":"token","block_structure":null,"dynamic":true,"actorder":null,"scale_dtype":null,"zp_dtype":null,"observer":null,"observer_kwargs":{}}""",
            w8a8["input_activations"]!.ToJsonString());

        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
        Assert.DoesNotContain(checkpoint.Tensors, t => t.Name.Contains("input_scale", StringComparison.Ordinal));   // dynamic: no stored scale
        IReadOnlyDictionary<string, CompressedModuleScheme> schemes = CompressedTensorsCodec.SchemesOf(config, checkpoint);
        Assert.Same(ActivationQuantization.Fp8PerTokenDynamic, schemes["a"].InputActivations);
        Assert.Same(ActivationQuantization.Fp8PerTokenDynamic, schemes["b"].InputActivations);
        Assert.Null(schemes["c"].InputActivations);
        Assert.Equal(3, CompressedTensorsCodec.ModulesOf(config, checkpoint).Count);
    }

    [Theory]
    [InlineData("""{"num_bits":8,"type":"float","symmetric":true,"strategy":"tensor","dynamic":false}""", "static (calibrated) scales")]
    [InlineData("""{"num_bits":8,"type":"float","symmetric":true,"strategy":"token"}""", "static (calibrated) scales")]
    [InlineData("""{"num_bits":8,"type":"int","symmetric":true,"strategy":"token","dynamic":true}""", "8-bit int symmetric activations with strategy 'token'")]
    [InlineData("""{"num_bits":4,"type":"float","symmetric":true,"strategy":"tensor_group","group_size":16,"dynamic":"local"}""", "dynamic is \"local\"")]
    [InlineData("""{"num_bits":8,"type":"float","symmetric":true,"strategy":"tensor","dynamic":true}""", "strategy 'tensor'")]
    [InlineData("""{"num_bits":8,"type":"float","symmetric":false,"strategy":"token","dynamic":true}""", "asymmetric")]
    [InlineData("\"yes\"", "is not an object")]
    public void Reader_RefusesOtherActivationQuantization_WithTheReason(string activations, string reason)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new CompressedCheckpointWriter();
        writer.AddQuantized("a", Fp8Weight());
        writer.Save(folder.Path, new JsonObject(), []);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!["quantization_config"]!;
        config["config_groups"]!["group_0"]!["input_activations"] = JsonNode.Parse(activations);
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
        var error = Assert.Throws<InvalidDataException>(() => CompressedTensorsCodec.SchemesOf(config, checkpoint));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        Assert.Contains("input_activations", error.Message, StringComparison.Ordinal);

        config["config_groups"]!["group_0"]!["input_activations"] = null;
        config["config_groups"]!["group_0"]!["output_activations"] = JsonNode.Parse("""{"num_bits":8,"type":"float","strategy":"token","dynamic":true}""");
        Assert.Contains("output activations", Assert.Throws<InvalidDataException>(() => CompressedTensorsCodec.ModulesOf(config, checkpoint)).Message, StringComparison.Ordinal);
    }

    private static CompressedTensor Fp8Weight()
    {
        var random = new Random(3);
        var dense = new DenseTensor(Enumerable.Range(0, 8 * 32).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray(), [8, 32]);
        return new RoundToNearestQuantizer(RtnOptions.Fp8PerChannel).Compress(dense, CompressionContext.Default);
    }
}
