// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text.Json.Nodes;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>
/// Our compressed-tensors export of a real checkpoint has the layout compressed-tensors itself produces: for every
/// quantized module the same tensor names, dtypes and shapes as the fixture that compressed-tensors' packing code wrote
/// for the same weights (Fixtures/compressed-tensors, see its README), and a <c>quantization_config</c> with the same
/// keys, format names and weight arguments.
/// </summary>
public class CompressedTensorsLayoutTests
{
    private static readonly string TinyStories = SharedData.File("tinystories-656k");

    public static TheoryData<string, QuantizerOptions> Schemes => new()
    {
        { "w4a16", QuantizerOptions.W4A16 },
        { "w4a16-asym", QuantizerOptions.W4A16Asym },
        { "w3a16", QuantizerOptions.W3A16 },
        { "w8a16", QuantizerOptions.W8A16 },
        { "w4a16-channel-asym", new QuantizerOptions { Quantization = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerChannel, Symmetric = false } } },
        { "fp8-channel", QuantizerOptions.Fp8A16 },
        { "fp8-tensor", new QuantizerOptions { Quantization = new RtnOptions { Format = NumberFormat.Fp8E4M3, Granularity = Granularity.PerTensor } } },
        { "fp8-dynamic", QuantizerOptions.W8A8Fp8Dynamic },
        { "nvfp4a16", QuantizerOptions.Nvfp4A16 },
        { "mxfp4a16", QuantizerOptions.Mxfp4A16 },
    };

    [Theory]
    [MemberData(nameof(Schemes))]
    public void Export_HasTheReferenceTensorsAndConfig(string scheme, QuantizerOptions options)
    {
        var fixture = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "compressed-tensors", scheme + ".json")))!;
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string output = Path.Combine(folder.Path, scheme);
        CheckpointQuantizer.Quantize(TinyStories, output, options);
        CopyForTheReferenceCheck(output, scheme);

        // Tensors: every name the reference writes for the quantized modules, with its dtype and shape, and no other.
        using SafetensorsCheckpoint ours = SafetensorsCheckpoint.Open(output);
        var expected = (JsonObject)fixture["tensors"]!;
        var modules = expected.Select(t => t.Key[..t.Key.LastIndexOf('.')]).ToHashSet(StringComparer.Ordinal);
        string[] ourNames = ours.Tensors.Select(t => t.Name).Where(n => modules.Contains(n[..Math.Max(0, n.LastIndexOf('.'))])).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expected.Select(t => t.Key).Order(StringComparer.Ordinal), ourNames);
        Assert.Equal(14, modules.Count);                                      // 7 projections × 2 layers; lm_head ignored
        foreach ((string name, JsonNode? node) in expected)
        {
            SafetensorsTensorInfo info = ours.GetInfo(name);
            Assert.Equal(node!["dtype"]!.GetValue<string>(), info.DType.ToString());
            Assert.Equal(node["shape"]!.AsArray().Select(d => d!.GetValue<long>()), info.Shape.Select(d => (long)d));
        }

        // quantization_config: the keys compressed-tensors writes (but "version", the compressed-tensors release that
        // wrote the file), the format, and each group's keys and weight arguments, key for key and in the same order.
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["quantization_config"]!;
        string[] configKeys = fixture["config_keys"]!.AsArray().Select(k => k!.GetValue<string>()).Where(k => k != "version").Order().ToArray();
        Assert.Equal(configKeys, config.Select(p => p.Key).Order());
        string format = fixture["format"]!.GetValue<string>();
        Assert.Equal(format, config["format"]!.GetValue<string>());
        Assert.Equal("compressed-tensors", config["quant_method"]!.GetValue<string>());
        Assert.Equal("compressed", config["quantization_status"]!.GetValue<string>());
        JsonObject group = Assert.Single(config["config_groups"]!.AsObject()).Value!.AsObject();
        Assert.Equal(fixture["group_keys"]!.AsArray().Select(k => k!.GetValue<string>()).Order(), group.Select(p => p.Key).Order());
        Assert.Equal(format, group["format"]!.GetValue<string>());
        Assert.Equal(modules.Order(StringComparer.Ordinal), group["targets"]!.AsArray().Select(t => t!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Null(group["output_activations"]);
        // input_activations: null for the weight-only schemes; FP8_DYNAMIC's arguments key for key, in order.
        JsonNode? referenceActivations = fixture["input_activations"];
        Assert.Equal(referenceActivations is null, group["input_activations"] is null);
        if (referenceActivations is JsonObject activations)
        {
            Assert.Equal(activations.Select(p => p.Key), group["input_activations"]!.AsObject().Select(p => p.Key));
            Assert.True(JsonNode.DeepEquals(activations, group["input_activations"]),
                $"{scheme}: input_activations are {group["input_activations"]!.ToJsonString()}, the reference {activations.ToJsonString()}");
        }

        var weights = group["weights"]!.AsObject();
        var reference = fixture["weights"]!.AsObject();
        Assert.Equal(reference.Select(p => p.Key), weights.Select(p => p.Key));
        foreach ((string key, JsonNode? value) in reference)
        {
            Assert.True(JsonNode.DeepEquals(value, weights[key]), $"{scheme}: weights.{key} is {weights[key]?.ToJsonString() ?? "null"}, the reference {value?.ToJsonString() ?? "null"}");
        }
    }

    /// <summary>With COMPRESSED_TENSORS_EXPORTS set, keeps the export for make_fixtures.py --ours (the reference's
    /// unpacking and dequantization run on it).</summary>
    private static void CopyForTheReferenceCheck(string output, string scheme)
    {
        string? target = Environment.GetEnvironmentVariable("COMPRESSED_TENSORS_EXPORTS");
        if (string.IsNullOrEmpty(target))
        {
            return;
        }

        string folder = Path.Combine(target, scheme);
        Directory.CreateDirectory(folder);
        foreach (string file in Directory.GetFiles(output))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        }

        // Our own decoding of every quantized module, for a bit-for-bit comparison with the reference's dequantization.
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["quantization_config"]!;
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(output);
        var writer = new SafetensorsWriter();
        foreach ((string module, (string format, JsonObject weights)) in CompressedTensorsCodec.ModulesOf(config, checkpoint).OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            writer.Add(module + ".weight", CompressedTensorsCodec.Read(checkpoint, module, format, weights).Decompress(), SafetensorsDType.F32);
        }

        writer.Save(Path.Combine(folder, "decoded.safetensors"));
    }
}
