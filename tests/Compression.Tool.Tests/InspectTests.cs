using System.Buffers.Binary;
using System.Text.Json;
using Compression.Testing;

namespace Compression.Tool.Tests;

/// <summary><c>compress inspect</c> on the real llama-shakespeare-char checkpoint, checked against the file's own header
/// (parsed here independently of the library's reader).</summary>
public class InspectTests
{
    private static readonly string Model = SharedData.File("llama-shakespeare-char");

    /// <summary>The safetensors header: name → (dtype, shape, byte length), read straight from the file.</summary>
    private static Dictionary<string, (string DType, long[] Shape, long Bytes)> Header(string file)
    {
        using FileStream stream = File.OpenRead(file);
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        byte[] json = new byte[BinaryPrimitives.ReadInt64LittleEndian(prefix)];
        stream.ReadExactly(json);
        using JsonDocument header = JsonDocument.Parse(json);
        var tensors = new Dictionary<string, (string, long[], long)>();
        foreach (JsonProperty entry in header.RootElement.EnumerateObject().Where(e => e.Name != "__metadata__"))
        {
            long[] offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
            tensors[entry.Name] = (entry.Value.GetProperty("dtype").GetString()!,
                entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(), offsets[1] - offsets[0]);
        }

        return tensors;
    }

    [Fact]
    public void Inspect_Json_ListsEveryTensorOfTheFile_WithItsDtypeShapeAndSize()
    {
        Dictionary<string, (string DType, long[] Shape, long Bytes)> expected = Header(Path.Combine(Model, "model.safetensors"));
        JsonElement result = ToolRun.Of("inspect", Model, "--json").AssertSuccess().Json();

        JsonElement[] tensors = result.GetProperty("tensors").EnumerateArray().ToArray();
        Assert.Equal(expected.Count, tensors.Length);
        Assert.Equal(expected.Count, result.GetProperty("tensor_count").GetInt32());
        foreach (JsonElement tensor in tensors)
        {
            (string dtype, long[] shape, long bytes) = expected[tensor.GetProperty("name").GetString()!];
            Assert.Equal(dtype, tensor.GetProperty("dtype").GetString());
            Assert.Equal(shape, tensor.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray());
            Assert.Equal(bytes, tensor.GetProperty("bytes").GetInt64());
        }

        long parameters = expected.Values.Sum(t => t.Shape.Aggregate(1L, (p, d) => p * d));
        Assert.Equal(parameters, result.GetProperty("parameters").GetInt64());
        Assert.InRange(parameters, 9_400_000, 9_600_000);            // the README's 9.49M parameters
        Assert.Equal(expected.Values.Sum(t => t.Bytes), result.GetProperty("bytes").GetInt64());
        Assert.Equal(expected.Count(t => t.Value.DType == "BF16"), result.GetProperty("dtypes").GetProperty("BF16").GetInt32());
        Assert.Equal("float (BF16)", result.GetProperty("format").GetString());
        Assert.Equal("LlamaForCausalLM", result.GetProperty("architecture").GetString());
        Assert.Equal(JsonValueKind.Null, result.GetProperty("quantization").ValueKind);
        Assert.Contains("model.layers.5.mlp.down_proj.weight", expected.Keys);
    }

    [Fact]
    public void Inspect_Text_NamesTheFormatArchitectureAndParameterCount()
    {
        ToolRun run = ToolRun.Of("inspect", Path.Combine(Model, "model.safetensors")).AssertSuccess();
        Assert.Contains("LlamaForCausalLM", run.Stdout);
        Assert.Contains("float (BF16)", run.Stdout);
        Assert.Contains("model.layers.0.self_attn.q_proj.weight", run.Stdout);
        Assert.Equal("", run.Stderr);
    }
}
