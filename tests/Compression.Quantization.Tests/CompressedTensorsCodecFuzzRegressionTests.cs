using System.Text.Json.Nodes;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>
/// Configs and checkpoints found by fuzzing (tests/Compression.Fuzzing, target compressed-tensors-codec; the inputs are
/// committed under its corpus/ as crash-*.bin) on which <see cref="CompressedTensorsCodec.ModulesOf"/> or
/// <see cref="CompressedTensorsCodec.Read"/> threw InvalidOperationException, NullReferenceException, ArgumentException,
/// RegexParseException or OverflowException instead of the documented <see cref="InvalidDataException"/>.
/// </summary>
public class CompressedTensorsCodecFuzzRegressionTests
{
    private const string Weights = """{ "num_bits": 4, "type": "int", "symmetric": true, "strategy": "channel" }""";

    public static TheoryData<string, string> MalformedConfigs() => new()
    {
        { "quant_method a number", $$"""{ "quant_method": 3, "config_groups": { "g": { "targets": ["m"], "weights": {{Weights}} } } }""" },
        { "format a list", $$"""{ "quant_method": "compressed-tensors", "format": [], "config_groups": { "g": { "targets": ["m"], "weights": {{Weights}} } } }""" },
        { "ignore entry a number", $$"""{ "quant_method": "compressed-tensors", "ignore": [3], "config_groups": { "g": { "targets": ["m"], "weights": {{Weights}} } } }""" },
        { "target null", $$"""{ "quant_method": "compressed-tensors", "config_groups": { "g": { "targets": [null], "weights": {{Weights}} } } }""" },
        { "target not a regex", $$"""{ "quant_method": "compressed-tensors", "config_groups": { "g": { "targets": ["re:("], "weights": {{Weights}} } } }""" },
        { "a key twice", $$"""{ "quant_method": "compressed-tensors", "quant_method": "x", "config_groups": { "g": { "targets": ["m"], "weights": {{Weights}} } } }""" },
        { "a key twice, nested", """{ "quant_method": "compressed-tensors", "config_groups": { "g": { "targets": ["m"], "weights": { "num_bits": 4, "num_bits": 8 } } } }""" },
    };

    [Theory]
    [MemberData(nameof(MalformedConfigs))]
    public void ModulesOfAndRead_MalformedConfig_ThrowInvalidDataException(string description, string config)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        using SafetensorsCheckpoint checkpoint = Save(folder, writer => Quantized(writer, "m", rows: 2, columns: 8));
        var node = (JsonObject)JsonNode.Parse(config)!;
        InvalidDataException e = Assert.Throws<InvalidDataException>(() =>
        {
            foreach ((string module, (string format, JsonObject weights)) in CompressedTensorsCodec.ModulesOf(node, checkpoint))
            {
                CompressedTensorsCodec.Read(checkpoint, module, format, weights);
            }
        });
        Assert.False(string.IsNullOrWhiteSpace(e.Message), description);
    }

    [Theory]
    [InlineData("""{ "num_bits": 4, "type": "int", "symmetric": "yes", "strategy": "channel" }""", "'symmetric' is not true or false")]
    [InlineData("""{ "num_bits": 4, "type": "int", "strategy": "group", "group_size": 1.5 }""", "'group_size' is not an integer")]
    public void Read_WeightArgumentOfTheWrongType_ThrowsInvalidDataException(string weights, string reason)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        using SafetensorsCheckpoint checkpoint = Save(folder, writer => Quantized(writer, "m", rows: 2, columns: 8));
        InvalidDataException e = Assert.Throws<InvalidDataException>(() =>
            CompressedTensorsCodec.Read(checkpoint, "m", CompressedTensorsCodec.PackQuantized, (JsonObject)JsonNode.Parse(weights)!));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(CompressedTensorsCodec.FloatQuantized, "m.weight", "F8_E4M3", 3_000_000_000L)]
    [InlineData(CompressedTensorsCodec.Mxfp4PackQuantized, "m.weight_packed", "U8", 2_000_000_000L)]
    public void Read_EmptyWeightWithAColumnCountBeyondInt32_ThrowsInvalidDataException(string format, string weight, string dtype, long columns)
    {
        // Zero rows make the file valid with no bytes at all; the column count overflowed a checked cast before.
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        using SafetensorsCheckpoint checkpoint = Save(folder, writer =>
        {
            writer.Add(weight, Enum.Parse<SafetensorsDType>(dtype), [0, columns], ReadOnlyMemory<byte>.Empty);
            writer.Add("m.weight_scale", SafetensorsDType.F32, [0, 1], ReadOnlyMemory<byte>.Empty);
        });
        var weights = (JsonObject)JsonNode.Parse(format == CompressedTensorsCodec.FloatQuantized
            ? """{ "num_bits": 8, "type": "float", "strategy": "channel" }"""
            : """{ "num_bits": 4, "type": "float", "strategy": "group", "group_size": 32 }""")!;
        InvalidDataException e = Assert.Throws<InvalidDataException>(() => CompressedTensorsCodec.Read(checkpoint, "m", format, weights));
        Assert.Contains("has a dimension of", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ModulesOf_QuantizedTensorWithoutAModuleName_ThrowsInvalidDataException()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        using SafetensorsCheckpoint checkpoint = Save(folder, writer => Quantized(writer, "", rows: 1, columns: 8));
        var config = (JsonObject)JsonNode.Parse($$"""{ "quant_method": "compressed-tensors", "config_groups": { "g": { "targets": ["Linear"], "weights": {{Weights}} } } }""")!;
        InvalidDataException e = Assert.Throws<InvalidDataException>(() => CompressedTensorsCodec.ModulesOf(config, checkpoint));
        Assert.Contains("without a module name", e.Message, StringComparison.Ordinal);
    }

    private static void Quantized(SafetensorsWriter writer, string module, int rows, int columns)
    {
        writer.Add<long>(module + ".weight_shape", SafetensorsDType.I64, [2], new long[] { rows, columns });
        writer.Add<int>(module + ".weight_packed", SafetensorsDType.I32, [rows, (columns + 7) / 8], new int[rows * ((columns + 7) / 8)]);
        writer.Add<float>(module + ".weight_scale", SafetensorsDType.F32, [rows, 1], Enumerable.Repeat(0.5f, rows).ToArray());
    }

    private static SafetensorsCheckpoint Save(TemporaryDirectory folder, Action<SafetensorsWriter> fill)
    {
        var writer = new SafetensorsWriter();
        fill(writer);
        string path = folder.File("model.safetensors");
        writer.Save(path);
        return SafetensorsCheckpoint.Open(path);
    }
}
