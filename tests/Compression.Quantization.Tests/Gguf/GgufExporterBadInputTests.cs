// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text.Json.Nodes;
using Compression.Quantization.Gguf;
using Compression.Testing;

namespace Compression.Quantization.Tests.Gguf;

/// <summary>Damaged and unsupported checkpoints fail with a clear exception and leave no output file.</summary>
public class GgufExporterBadInputTests
{
    private static readonly string TinyStories = SharedData.File("tinystories-656k");

    private static TemporaryDirectory CopyOfTinyStories()
    {
        TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        foreach (string file in Directory.GetFiles(TinyStories))
        {
            File.Copy(file, Path.Combine(folder.Path, Path.GetFileName(file)));
        }

        return folder;
    }

    private static void AssertFailsWithoutOutput<TException>(TemporaryDirectory input) where TException : Exception
    {
        using TemporaryDirectory output = RandomData.CreateTemporaryDirectory();
        Assert.Throws<TException>(() => GgufExporter.Export(input.Path, output.File("m.gguf")));
        Assert.Empty(Directory.GetFiles(output.Path));
    }

    [Fact]
    public void Arguments_AreValidatedWithTheirNames()
    {
        using TemporaryDirectory output = RandomData.CreateTemporaryDirectory();
        Assert.Equal("inputFolder", Assert.Throws<ArgumentException>(() => GgufExporter.Export("", output.File("m.gguf"))).ParamName);
        Assert.Equal("outputPath", Assert.Throws<ArgumentException>(() => GgufExporter.Export(TinyStories, "")).ParamName);
        Assert.Equal("inputFolder", Assert.Throws<ArgumentException>(() => GgufExporter.Export(output.File("missing"), output.File("m.gguf"))).ParamName);
        Assert.Equal("inputFolder", Assert.Throws<ArgumentException>(() => GgufExporter.Export(output.Path, output.File("m.gguf"))).ParamName);
        Assert.Equal("outputPath", Assert.Throws<ArgumentException>(() => GgufExporter.Export(TinyStories, output.Path)).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentException>(() => GgufExporter.Export(TinyStories, output.File("m.gguf"), new GgufExportOptions { Alignment = 12 })).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentException>(() => GgufExporter.Export(TinyStories, output.File("m.gguf"), new GgufExportOptions { TensorType = (GgmlType)9 })).ParamName);
        Assert.Empty(Directory.GetFiles(output.Path));
    }

    [Fact]
    public void TruncatedSafetensors_IsInvalidData()
    {
        using TemporaryDirectory input = CopyOfTinyStories();
        string weights = Path.Combine(input.Path, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(weights);
        foreach (int length in new[] { 0, 7, 100, bytes.Length / 2, bytes.Length - 1 })
        {
            File.WriteAllBytes(weights, bytes[..length]);
            AssertFailsWithoutOutput<InvalidDataException>(input);
        }
    }

    [Fact]
    public void NonFiniteWeight_IsInvalidData()
    {
        using TemporaryDirectory input = CopyOfTinyStories();
        string weights = Path.Combine(input.Path, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(weights);
        // The last 4 bytes are the last float32 of the last tensor in the file: make it NaN.
        BitConverter.TryWriteBytes(bytes.AsSpan(bytes.Length - 4), float.NaN);
        File.WriteAllBytes(weights, bytes);
        AssertFailsWithoutOutput<InvalidDataException>(input);
    }

    [Theory]
    [InlineData("config.json", "{ not json")]
    [InlineData("config.json", "[1, 2]")]
    [InlineData("config.json", "{\"model_type\": \"llama\", \"hidden_size\": \"big\"}")]
    [InlineData("tokenizer.json", "\u0000\u0001garbage")]
    [InlineData("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": 5000}}}")]
    public void GarbageJson_IsInvalidData(string file, string content)
    {
        using TemporaryDirectory input = CopyOfTinyStories();
        File.WriteAllText(Path.Combine(input.Path, file), content);
        AssertFailsWithoutOutput<InvalidDataException>(input);
    }

    [Theory]
    [InlineData("model_type", "\"gpt2\"")]
    [InlineData("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0}")]
    [InlineData("attention_bias", "true")]
    public void UnsupportedConfigurations_AreNotSupported(string key, string value)
    {
        using TemporaryDirectory input = CopyOfTinyStories();
        string path = Path.Combine(input.Path, "config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        config[key] = JsonNode.Parse(value);
        File.WriteAllText(path, config.ToJsonString());
        AssertFailsWithoutOutput<NotSupportedException>(input);
    }

    [Fact]
    public void MoreLayersInConfigThanInTheCheckpoint_IsInvalidData()
    {
        using TemporaryDirectory input = CopyOfTinyStories();
        string path = Path.Combine(input.Path, "config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        config["num_hidden_layers"] = 3;
        File.WriteAllText(path, config.ToJsonString());
        AssertFailsWithoutOutput<InvalidDataException>(input);
    }

    [Fact]
    public void ByteLevelBpe_IsNotSupported_UnlessTheTokenizerIsLeftOut()
    {
        using TemporaryDirectory input = CopyOfTinyStories();
        string path = Path.Combine(input.Path, "tokenizer.json");
        var tokenizer = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        tokenizer["model"]!["byte_fallback"] = false;
        tokenizer["normalizer"] = null;
        tokenizer["decoder"] = JsonNode.Parse("{\"type\": \"ByteLevel\"}");
        File.WriteAllText(path, tokenizer.ToJsonString());
        AssertFailsWithoutOutput<NotSupportedException>(input);
        using TemporaryDirectory output = RandomData.CreateTemporaryDirectory();
        GgufExportResult result = GgufExporter.Export(input.Path, output.File("m.gguf"), GgufExportOptions.Default with { IncludeTokenizer = false });
        Assert.Equal("none", result.TokenizerModel);
    }
}
