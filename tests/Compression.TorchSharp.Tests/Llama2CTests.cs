using System.Buffers.Binary;
using Compression.Tensors;
using Compression.Testing;
using Compression.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary>
/// The llama2.c reader on ../shared/data/stories260K/stories260K.bin, a layout fixture (its weights were rewritten by a
/// third party, so only the layout is checked, never accuracy).
/// </summary>
[Collection("TorchSharp")]
public class Llama2CTests
{
    private static string File260K => SharedData.File("stories260K", "stories260K.bin");

    private static float Raw(byte[] bytes, long index) => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(28 + (int)(4 * index)));

    [Fact]
    public void Stories260K_LoadsWithItsHeader_AndEveryArrayInPlace()
    {
        using LlamaForCausalLM model = Llama2CModels.Load(File260K);
        LlamaConfig c = model.Config;
        Assert.Equal((64, 172, 5, 8, 4, 512, 512), (c.HiddenSize, c.IntermediateSize, c.Layers, c.Heads, c.KeyValueHeads, c.VocabularySize, c.ContextLength));
        Assert.True(c.TieWordEmbeddings);                             // positive vocab_size: shared classifier

        byte[] bytes = File.ReadAllBytes(File260K);
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter.ToDenseTensor());
        // Offsets of the layout: embedding, then per-layer arrays stacked over the 5 layers.
        long embedding = 512 * 64, attentionNorm = embedding, wq = attentionNorm + 5 * 64, wk = wq + 5 * 64 * 64, wv = wk + 5 * 32 * 64;
        long wo = wv + 5 * 32 * 64, ffnNorm = wo + 5 * 64 * 64, w1 = ffnNorm + 5 * 64, w2 = w1 + 5 * 172 * 64, w3 = w2 + 5 * 64 * 172;
        long finalNorm = w3 + 5 * 172 * 64;
        Assert.Equal(Raw(bytes, 3 * 64 + 5), p["model.embed_tokens.weight"][3, 5]);
        Assert.Equal(Raw(bytes, attentionNorm + 2 * 64 + 7), p["model.layers.2.input_layernorm.weight"].Span[7]);
        // wq rows are reordered per head from interleaved pairs to halves: row h·8 + i ← h·8 + 2i, row h·8 + 4 + i ← h·8 + 2i + 1.
        Assert.Equal(Raw(bytes, wq + 1 * 64 * 64 + (8 + 2 * 1) * 64 + 9), p["model.layers.1.self_attn.q_proj.weight"][8 + 1, 9]);
        Assert.Equal(Raw(bytes, wq + 1 * 64 * 64 + (8 + 2 * 1 + 1) * 64 + 9), p["model.layers.1.self_attn.q_proj.weight"][8 + 4 + 1, 9]);
        Assert.Equal(Raw(bytes, wk + 4 * 32 * 64 + (3 * 8 + 2 * 3 + 1) * 64 + 0), p["model.layers.4.self_attn.k_proj.weight"][3 * 8 + 4 + 3, 0]);
        Assert.Equal(Raw(bytes, wv + 32 * 64 + 5 * 64 + 6), p["model.layers.1.self_attn.v_proj.weight"][5, 6]);
        Assert.Equal(Raw(bytes, wo + 3 * 64 * 64 + 63 * 64 + 1), p["model.layers.3.self_attn.o_proj.weight"][63, 1]);
        Assert.Equal(Raw(bytes, ffnNorm + 4 * 64 + 63), p["model.layers.4.post_attention_layernorm.weight"].Span[63]);
        Assert.Equal(Raw(bytes, w1 + 171 * 64 + 2), p["model.layers.0.mlp.gate_proj.weight"][171, 2]);
        Assert.Equal(Raw(bytes, w2 + 2 * 64 * 172 + 10 * 172 + 171), p["model.layers.2.mlp.down_proj.weight"][10, 171]);
        Assert.Equal(Raw(bytes, w3 + 4 * 172 * 64 + 100 * 64 + 50), p["model.layers.4.mlp.up_proj.weight"][100, 50]);
        Assert.Equal(Raw(bytes, finalNorm + 33), p["model.norm.weight"].Span[33]);

        using (torch.no_grad())
        {
            using Tensor logits = model.forward(torch.tensor(new long[] { 1, 5, 7, 9 }, [1, 4]));
            Assert.Equal([1L, 4, 512], logits.shape);
            Assert.True(torch.isfinite(logits).all().item<bool>());
        }
    }

    [Fact]
    public void InterleavedPairs_BecomeHalves_HeadByHead()
    {
        // Two heads of dimension 4, one input: rows [h0: a0 a1 b0 b1 | h1: c0 c1 d0 d1] → [a0 b0 a1 b1 | c0 d0 c1 d1].
        float[] rows = [0, 1, 2, 3, 10, 11, 12, 13];
        Assert.Equal([0f, 2, 1, 3, 10, 12, 11, 13], Llama2CModels.InterleavedToHalves(rows, heads: 2, headDimension: 4, inputs: 1));
    }

    [Fact]
    public void TruncatedOrForeignFiles_AreRefused()
    {
        string path = Path.GetTempFileName();
        try
        {
            byte[] bytes = File.ReadAllBytes(File260K);
            File.WriteAllBytes(path, bytes[..^4]);
            Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => Llama2CModels.Load(path)).Message, StringComparison.Ordinal);
            File.WriteAllBytes(path, bytes[..20]);
            Assert.Throws<InvalidDataException>(() => Llama2CModels.Load(path));
            byte[] badHeader = (byte[])bytes.Clone();
            BinaryPrimitives.WriteInt32LittleEndian(badHeader.AsSpan(12), 7);      // 7 heads do not divide dim 64
            File.WriteAllBytes(path, badHeader);
            Assert.Throws<InvalidDataException>(() => Llama2CModels.Load(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
