// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.Tensors;

namespace Compression.Reliability.Tests;

/// <summary>
/// A config.json with a key given twice: System.Text.Json's JsonNode accepts it at parse time and throws
/// ArgumentException ("An item with the same key has already been added") on first access, which escaped the readers
/// that catch JsonException. Refused up front now, as InvalidDataException naming the file.
/// </summary>
public sealed class DuplicateJsonKeyTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"dup-json-{Guid.NewGuid():N}");

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("{\"model_type\":\"llama\",\"model_type\":\"gpt2\"}")]
    [InlineData("{\"model_type\":\"llama\",\"nested\":{\"a\":1,\"a\":2}}")]
    public void CheckpointQuantizer_ConfigWithADuplicateKey_ThrowsInvalidDataException(string config)
    {
        string input = Path.Combine(_folder, "in");
        Directory.CreateDirectory(input);
        File.WriteAllText(Path.Combine(input, "config.json"), config);
        var writer = new SafetensorsWriter();
        writer.Add("model.layers.0.mlp.up_proj.weight", new DenseTensor(8, 16));
        writer.Save(Path.Combine(input, "model.safetensors"));

        var e = Assert.Throws<InvalidDataException>(() =>
            CheckpointQuantizer.Quantize(input, Path.Combine(_folder, "out"), Compression.QuantizerOptions.W8A16));
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("Duplicate", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.False(Directory.Exists(Path.Combine(_folder, "out")));
    }
}
