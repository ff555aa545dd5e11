// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Quantization.Gguf;
using Compression.Safetensors;
using Compression.Testing;

namespace Compression.Quantization.Tests.Gguf;

/// <summary>
/// GGUF export of the shared Llama checkpoints, read back by <see cref="GgufTestReader"/> (written from the
/// specification): header, metadata, tensor infos and offsets; every quantized tensor equals ggml's reference
/// quantization (<see cref="GgmlReference"/>) of the original weight, Q and K rows in llama.cpp's rotary order.
/// </summary>
public class GgufExporterTests
{
    private static readonly string TinyStories = SharedData.File("tinystories-656k");
    private static readonly string ShakespeareChar = SharedData.File("llama-shakespeare-char");

    private static (GgufExportResult Result, GgufTestReader File) Export(TemporaryDirectory folder, string input, GgufExportOptions options)
    {
        string path = folder.File("model.gguf");
        GgufExportResult result = GgufExporter.Export(input, path, options);
        return (result, GgufTestReader.Read(File.ReadAllBytes(path)));
    }

    [Fact]
    public void TinyStories_HasLlamaCppMetadataAndTensorInfos()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        (GgufExportResult result, GgufTestReader gguf) = Export(folder, TinyStories, GgufExportOptions.Default);

        Assert.Equal(3u, gguf.Version);
        Assert.Equal("llama", gguf.Get<string>("general.architecture"));
        Assert.Equal(7u, gguf.Get<uint>("general.file_type"));                 // LLAMA_FTYPE_MOSTLY_Q8_0
        Assert.Equal(2u, gguf.Get<uint>("general.quantization_version"));
        Assert.Equal(512u, gguf.Get<uint>("llama.context_length"));
        Assert.Equal(128u, gguf.Get<uint>("llama.embedding_length"));
        Assert.Equal(2u, gguf.Get<uint>("llama.block_count"));
        Assert.Equal(384u, gguf.Get<uint>("llama.feed_forward_length"));
        Assert.Equal(8u, gguf.Get<uint>("llama.attention.head_count"));
        Assert.Equal(4u, gguf.Get<uint>("llama.attention.head_count_kv"));
        Assert.Equal(16u, gguf.Get<uint>("llama.rope.dimension_count"));     // 128 / 8
        Assert.Equal(2048u, gguf.Get<uint>("llama.vocab_size"));
        Assert.Equal(1e-6f, gguf.Get<float>("llama.attention.layer_norm_rms_epsilon"));
        Assert.Equal(10000f, gguf.Get<float>("llama.rope.freq_base"));
        Assert.False(gguf.Metadata.ContainsKey("general.alignment"));          // default 32 is implicit
        Assert.False(gguf.Metadata.ContainsKey("llama.attention.key_length")); // no head_dim in config.json

        // Tied embeddings, stored as lm_head only: token_embd comes from it and no output tensor is written.
        string[] expected = ["token_embd.weight",
            .. Enumerable.Range(0, 2).SelectMany(l => new[] { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "attn_norm", "ffn_norm" }
                .Select(p => $"blk.{l}.{p}.weight")),
            "output_norm.weight"];
        Assert.Equal(expected.Order(), gguf.Tensors.Select(t => t.Name).Order());
        Assert.Equal("lm_head.weight", result.Tensors.Single(t => t.Name == "token_embd.weight").Source);
        Assert.Equal([128UL, 2048UL], gguf.Tensor("token_embd.weight").Ne);   // ne: innermost first
        Assert.Equal([128UL, 64UL], gguf.Tensor("blk.0.attn_k.weight").Ne);
        foreach (GgufTestReader.TensorInfo t in gguf.Tensors)
        {
            Assert.Equal(t.Ne.Length == 1 ? 0u : 8u, t.Type);                 // vectors F32, matrices Q8_0
        }

        // Offsets: aligned, in order, no overlap; the file ends with the last tensor's padding.
        long end = 0;
        foreach (GgufTestReader.TensorInfo t in gguf.Tensors.OrderBy(t => t.Offset))
        {
            Assert.Equal(0UL, t.Offset % 32);
            Assert.True((long)t.Offset >= end);
            end = (long)t.Offset + GgufTestReader.ByteSize(t);
        }

        Assert.Equal(0, gguf.DataStart % 32);
        Assert.Equal(gguf.DataStart + (end + 31) / 32 * 32, gguf.Bytes.Length);
        Assert.Equal(gguf.Bytes.Length, result.FileBytes);
    }

    [Fact]
    public void TinyStories_TokenizerMetadataFollowsTokenizerJson()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        (GgufExportResult result, GgufTestReader gguf) = Export(folder, TinyStories, GgufExportOptions.Default);
        Assert.Equal("llama", result.TokenizerModel);
        Assert.Equal("llama", gguf.Get<string>("tokenizer.ggml.model"));
        object[] tokens = gguf.Get<object[]>("tokenizer.ggml.tokens");
        object[] types = gguf.Get<object[]>("tokenizer.ggml.token_type");
        object[] scores = gguf.Get<object[]>("tokenizer.ggml.scores");
        Assert.Equal(2048, tokens.Length);
        Assert.Equal(2048, types.Length);
        Assert.Equal(2048, scores.Length);
        Assert.Equal(["<unk>", "<|start_story|>", "<|end_story|>", "\n"], tokens.Take(4).Cast<string>());
        Assert.Equal([2, 3, 3, 1], types.Take(4).Cast<int>());                // unknown, control, control, normal
        Assert.Equal(1u, gguf.Get<uint>("tokenizer.ggml.bos_token_id"));
        Assert.Equal(2u, gguf.Get<uint>("tokenizer.ggml.eos_token_id"));
        Assert.Equal(0u, gguf.Get<uint>("tokenizer.ggml.unknown_token_id"));
        Assert.Equal(0u, gguf.Get<uint>("tokenizer.ggml.padding_token_id"));
        Assert.True(gguf.Get<bool>("tokenizer.ggml.add_bos_token"));
        Assert.False(gguf.Get<bool>("tokenizer.ggml.add_eos_token"));
        Assert.True(gguf.Get<bool>("tokenizer.ggml.add_space_prefix"));

        // The first merges of tokenizer.json ("e ▁", "d ▁") score −1 and −2: llama.cpp merges the highest score first.
        int first = Array.IndexOf(tokens, "e\u2581"), second = Array.IndexOf(tokens, "d\u2581");
        Assert.Equal(-1f, (float)scores[first]);
        Assert.Equal(-2f, (float)scores[second]);
        Assert.Equal(0f, (float)scores[Array.IndexOf(tokens, "!")]);
    }

    public static TheoryData<GgmlType> QuantizedTypes => [GgmlType.Q8_0, GgmlType.Q4_0];

    [Theory]
    [MemberData(nameof(QuantizedTypes))]
    public void QuantizedTensors_EqualTheReferenceQuantizationOfTheOriginalWeights(GgmlType type)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        (GgufExportResult result, GgufTestReader gguf) = Export(folder, TinyStories, GgufExportOptions.Default with { TensorType = type });
        using SafetensorsCheckpoint original = SafetensorsCheckpoint.Open(TinyStories);
        int checkedMatrices = 0;
        foreach (GgufTensorRecord record in result.Tensors)
        {
            GgufTestReader.TensorInfo info = gguf.Tensor(record.Name);
            float[] weight = original.ReadDense(record.Source).Span.ToArray();
            ReadOnlySpan<byte> stored = gguf.Data(info);
            if (info.Ne.Length == 1)
            {
                Assert.Equal(0u, info.Type);
                Assert.Equal(weight, GgmlReference.Dequantize(stored, 0, info.Elements));
                continue;
            }

            int heads = record.Name.EndsWith("attn_q.weight", StringComparison.Ordinal) ? 8 : record.Name.EndsWith("attn_k.weight", StringComparison.Ordinal) ? 4 : 0;
            Assert.Equal(heads > 0, record.RopePermuted);
            float[] expected = heads > 0 ? RopeOrder(weight, (int)info.Ne[1], (int)info.Ne[0], heads) : weight;
            byte[] reference = type == GgmlType.Q8_0 ? GgmlReference.QuantizeQ8_0(expected) : GgmlReference.QuantizeQ4_0(expected);
            Assert.Equal((uint)type, info.Type);
            Assert.True(reference.AsSpan().SequenceEqual(stored), $"{record.Name}: bytes differ from ggml's reference quantization");
            Assert.Equal(GgmlReference.Dequantize(reference, (uint)type, info.Elements), GgmlQuantization.Dequantize(stored, type, (int)info.Elements));
            checkedMatrices++;
        }

        Assert.Equal(15, checkedMatrices);   // token_embd + 7 projections × 2 layers
    }

    [Fact]
    public void F16AndF32_StoreTheRoundedAndExactWeights()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        using SafetensorsCheckpoint original = SafetensorsCheckpoint.Open(TinyStories);
        foreach (GgmlType type in new[] { GgmlType.F16, GgmlType.F32 })
        {
            (GgufExportResult result, GgufTestReader gguf) = Export(folder, TinyStories, GgufExportOptions.Default with { TensorType = type });
            Assert.Equal(type == GgmlType.F16 ? 1u : 0u, gguf.Get<uint>("general.file_type"));
            GgufTensorRecord down = result.Tensors.Single(t => t.Name == "blk.1.ffn_down.weight");
            float[] weight = original.ReadDense(down.Source).Span.ToArray();
            float[] stored = GgmlReference.Dequantize(gguf.Data(gguf.Tensor(down.Name)), (uint)type, weight.Length);
            float[] expected = type == GgmlType.F32 ? weight : weight.Select(w => GgmlReference.FromHalfBits(GgmlReference.ToHalfBits(w))).ToArray();
            Assert.Equal(expected, stored);
        }
    }

    [Fact]
    public void ShakespeareChar_UntiedBf16WithoutTokenizer()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        (GgufExportResult result, GgufTestReader gguf) = Export(folder, ShakespeareChar, GgufExportOptions.Default with { TensorType = GgmlType.Q4_0, Alignment = 64 });
        Assert.Equal("none", gguf.Get<string>("tokenizer.ggml.model"));
        Assert.Equal("none", result.TokenizerModel);
        Assert.Equal(64u, gguf.Get<uint>("general.alignment"));
        Assert.All(gguf.Tensors, t => Assert.Equal(0UL, t.Offset % 64));
        Assert.Equal(0, gguf.DataStart % 64);
        Assert.Equal(2u, gguf.Get<uint>("llama.attention.head_count_kv"));
        Assert.Equal(64u, gguf.Get<uint>("llama.attention.key_length"));     // config.json has head_dim
        Assert.Equal(1e-5f, gguf.Get<float>("llama.attention.layer_norm_rms_epsilon"));
        Assert.Equal(10000f, gguf.Get<float>("llama.rope.freq_base"));       // from rope_parameters
        Assert.Equal(6 * 9 + 3, gguf.Tensors.Count);                          // untied: output.weight too
        Assert.Equal([384UL, 65UL], gguf.Tensor("output.weight").Ne);

        using SafetensorsCheckpoint original = SafetensorsCheckpoint.Open(ShakespeareChar);
        float[] k = original.ReadDense("model.layers.5.self_attn.k_proj.weight").Span.ToArray();
        Assert.True(GgmlReference.QuantizeQ4_0(RopeOrder(k, 128, 384, 2)).AsSpan().SequenceEqual(gguf.Data(gguf.Tensor("blk.5.attn_k.weight"))));
    }

    [Fact]
    public void RopeOrder_TurnsHuggingFaceRotateHalfIntoLlamaCppAdjacentPairs()
    {
        // The point of the permutation: rotating Hugging Face's q with rotate_half (pairs i, i + d/2) and rotating the
        // permuted q with llama.cpp's normal rope (pairs 2i, 2i + 1) give the same numbers, row for row.
        const int heads = 3, d = 8, columns = 5, position = 7;
        float[] w = RandomData.Gaussian(heads * d * columns, seed: 11);
        float[] x = RandomData.Gaussian(columns, seed: 12);
        float[] permuted = GgufExporter.PermuteForRope(w, heads * d, columns, heads, "q");
        Assert.Equal(RopeOrder(w, heads * d, columns, heads), permuted);
        double[] q = Multiply(w, x, heads * d, columns), qp = Multiply(permuted, x, heads * d, columns);
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < d / 2; i++)
            {
                double theta = position * Math.Pow(10000, -2.0 * i / d), c = Math.Cos(theta), s = Math.Sin(theta);
                double hfLow = q[h * d + i] * c - q[h * d + i + d / 2] * s, hfHigh = q[h * d + i + d / 2] * c + q[h * d + i] * s;
                double ggLow = qp[h * d + 2 * i] * c - qp[h * d + 2 * i + 1] * s, ggHigh = qp[h * d + 2 * i] * s + qp[h * d + 2 * i + 1] * c;
                Assert.Equal(hfLow, ggLow, 12);
                Assert.Equal(hfHigh, ggHigh, 12);
            }
        }
    }

    [Fact]
    public void Export_ReportsProgressPerTensor_AndACancelledExportLeavesTheOldFile()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string path = folder.File("model.gguf");
        var reports = new List<CompressionProgress>();
        GgufExportResult result = GgufExporter.Export(TinyStories, path, null, new SynchronousProgress(reports.Add));
        Assert.Equal(result.Tensors.Count, reports.Count);
        Assert.All(reports, r => Assert.Equal(GgufExporter.ProgressStage, r.Stage));
        Assert.Equal(Enumerable.Range(1, reports.Count).Select(i => (long)i), reports.Select(r => r.Completed));

        byte[] before = File.ReadAllBytes(path);
        using var cancel = new CancellationTokenSource();
        var progress = new SynchronousProgress(r =>
        {
            if (r.Completed == 5)
            {
                cancel.Cancel();
            }
        });
        Assert.ThrowsAny<OperationCanceledException>(() => GgufExporter.Export(TinyStories, path, GgufExportOptions.Default with { TensorType = GgmlType.Q4_0 }, progress, cancel.Token));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["model.gguf"], Directory.GetFiles(folder.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Export_IsDeterministic()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        GgufExporter.Export(TinyStories, folder.File("a.gguf"), GgufExportOptions.Default with { TensorType = GgmlType.Q4_1 });
        GgufExporter.Export(TinyStories, folder.File("b.gguf"), GgufExportOptions.Default with { TensorType = GgmlType.Q4_1 });
        Assert.Equal(File.ReadAllBytes(folder.File("a.gguf")), File.ReadAllBytes(folder.File("b.gguf")));
    }

    /// <summary>llama.cpp's row order written independently: GGUF row h·d + 2i + j holds HF row h·d + j·d/2 + i.</summary>
    internal static float[] RopeOrder(float[] w, int rows, int columns, int heads)
    {
        int d = rows / heads;
        var result = new float[w.Length];
        for (int r = 0; r < rows; r++)
        {
            int h = r / d, within = r % d, i = within / 2, j = within % 2;
            Array.Copy(w, (h * d + j * (d / 2) + i) * columns, result, r * columns, columns);
        }

        return result;
    }

    private static double[] Multiply(float[] w, float[] x, int rows, int columns)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                y[r] += (double)w[r * columns + c] * x[c];
            }
        }

        return y;
    }

    private sealed class SynchronousProgress(Action<CompressionProgress> report) : IProgress<CompressionProgress>
    {
        public void Report(CompressionProgress value) => report(value);
    }
}
