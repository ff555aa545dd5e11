using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Compression.Safetensors;
using Compression.Testing;

namespace Compression.Core.Tests;

/// <summary>
/// Files written by other tools (PyTorch / Hugging Face safetensors), from ../shared/data: the reader must agree
/// with their config.json and with figures computed independently (Python's struct module, see the comments).
/// </summary>
public class RealCheckpointTests
{
    [Theory]
    [InlineData("llama-shakespeare-char", 57, 9_492_096L, SafetensorsDType.BF16)]
    [InlineData("gpt2-shakespeare-char", 76, 10_770_816L, SafetensorsDType.BF16)]
    [InlineData("tinystories-656k", 20, 656_000L, SafetensorsDType.F32)]
    public void RealCheckpoint_OpensWithTheExpectedTensors(string folder, int tensors, long parameters, SafetensorsDType dtype)
    {
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(SharedData.File(folder));
        Assert.Equal(tensors, checkpoint.Tensors.Count);
        Assert.Equal(parameters, checkpoint.Tensors.Sum(t => t.ElementCount));
        Assert.All(checkpoint.Tensors, t => Assert.Equal(dtype, t.DType));
        Assert.Equal("pt", checkpoint.Metadata["format"]);
        foreach (SafetensorsTensorInfo info in checkpoint.Tensors)
        {
            Assert.All(checkpoint.ReadDense(info.Name).Span.ToArray(), v => Assert.True(float.IsFinite(v)));
        }
    }

    [Fact]
    public void LlamaCheckpoint_ShapesAgreeWithConfig()
    {
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(SharedData.File("llama-shakespeare-char", "config.json")));
        JsonElement c = config.RootElement;
        int hidden = c.GetProperty("hidden_size").GetInt32(), vocab = c.GetProperty("vocab_size").GetInt32();
        int layers = c.GetProperty("num_hidden_layers").GetInt32(), mlp = c.GetProperty("intermediate_size").GetInt32();
        int headDim = c.GetProperty("head_dim").GetInt32(), kvHeads = c.GetProperty("num_key_value_heads").GetInt32();

        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(SharedData.File("llama-shakespeare-char"));
        Assert.Equal(new long[] { vocab, hidden }, checkpoint.GetInfo("model.embed_tokens.weight").Shape);
        for (int i = 0; i < layers; i++)
        {
            Assert.Equal(new long[] { kvHeads * headDim, hidden }, checkpoint.GetInfo($"model.layers.{i}.self_attn.k_proj.weight").Shape);
            Assert.Equal(new long[] { mlp, hidden }, checkpoint.GetInfo($"model.layers.{i}.mlp.up_proj.weight").Shape);
            Assert.Equal(new long[] { hidden, mlp }, checkpoint.GetInfo($"model.layers.{i}.mlp.down_proj.weight").Shape);
        }
    }

    // Sums computed with Python's struct module directly from the files (float32 values summed in float64, in file
    // order), independently of this library.
    [Theory]
    [InlineData("llama-shakespeare-char", "model.layers.0.mlp.up_proj.weight", 393216, 11.143119835760444, 7348.571565436665)]
    [InlineData("gpt2-shakespeare-char", "transformer.h.0.attn.c_attn.weight", 442368, 0.20796943811001256, 12307.086380118679)]
    [InlineData("tinystories-656k", "lm_head.weight", 262144, 2512.834466814995, 104273.10441744328)]
    public void RealTensor_ValuesMatchAnIndependentDecoder(string folder, string name, int count, double sum, double absSum)
    {
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(SharedData.File(folder));
        float[] values = checkpoint.ReadDense(name).Span.ToArray();
        Assert.Equal(count, values.Length);
        double s = 0, a = 0;
        foreach (float v in values)
        {
            s += v;
            a += Math.Abs(v);
        }

        // Same values, same order, same float64 sums: any difference is a decoding error. 1e-9 relative is far
        // above float64 rounding (~1e-13 here) and far below one wrong element.
        Assert.Equal(sum, s, Math.Abs(sum) * 1e-9 + 1e-12);
        Assert.Equal(absSum, a, absSum * 1e-9);
    }

    [Fact]
    public void RealFile_RawBytes_AreTheBytesOnDisk()
    {
        string path = SharedData.File("llama-shakespeare-char", "model.safetensors");
        byte[] disk = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(disk);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal((long)headerLength, file.HeaderLength);
        foreach (SafetensorsTensorInfo info in file.Tensors.Take(10))
        {
            byte[] expected = disk.AsSpan((int)(8 + (long)headerLength + info.DataBegin), (int)info.ByteLength).ToArray();
            Assert.Equal(expected, file.GetBytes(info.Name).ToArray());
        }
    }

    [Fact]
    public void TinyStories_MetadataRecordsTheTiedEmbedding()
    {
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(SharedData.File("tinystories-656k", "model.safetensors"));
        Assert.Equal("lm_head.weight", checkpoint.Metadata["model.embed_tokens.weight"]);
        Assert.False(checkpoint.Contains("model.embed_tokens.weight"));
    }

    [Fact]
    public void RealCheckpoint_RewrittenByUs_IsByteIdentical()
    {
        // Copy every tensor through our writer; the data section must be identical and the header equivalent.
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        using SafetensorsFile original = SafetensorsFile.Open(SharedData.File("gpt2-shakespeare-char", "model.safetensors"));
        var writer = new SafetensorsWriter();
        foreach ((string key, string value) in original.Metadata)
        {
            writer.SetMetadata(key, value);
        }

        foreach (SafetensorsTensorInfo info in original.Tensors)
        {
            writer.Add(info.Name, info.DType, info.Shape.ToArray(), original.GetBytes(info.Name).ToArray());
        }

        string path = folder.File("copy.safetensors");
        writer.Save(path);
        using SafetensorsFile copy = SafetensorsFile.Open(path);
        Assert.Equal(original.Tensors, copy.Tensors);
        Assert.Equal(original.Metadata, copy.Metadata);
        byte[] a = File.ReadAllBytes(original.FilePath), b = File.ReadAllBytes(path);
        Assert.Equal(a.AsSpan(8 + (int)original.HeaderLength).ToArray(), b.AsSpan(8 + (int)copy.HeaderLength).ToArray());
        Assert.NotNull(Encoding.UTF8.GetString(b, 8, (int)copy.HeaderLength));
    }
}
