// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Compression.Calibration;
using Compression.Composition;
using Compression.LowRank;
using Compression.Pruning;
using Compression.Pruning.Storage;
using Compression.Quantization;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.Tensors;

namespace Compression.Fuzzing;

/// <summary>
/// Writes the seed corpus (run once with <c>--generate-corpus</c>; the seeds are committed under corpus/): small
/// valid files of every kind each target reads, with the real checkpoints' tensor names and dtypes at small shapes,
/// plus edge cases (empty data, scalars, zero-sized tensors, metadata only).
/// </summary>
internal static class CorpusGenerator
{
    private static readonly string SharedData = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../../shared/data"));

    public static int Write(string root)
    {
        int count = 0;
        void Seed(string target, string name, ReadOnlySpan<byte> bytes)
        {
            string folder = Path.Combine(root, target);
            Directory.CreateDirectory(folder);
            File.WriteAllBytes(Path.Combine(folder, name), bytes.ToArray());
            count++;
        }

        // safetensors and its header parser.
        foreach ((string name, SafetensorsWriter writer) in SafetensorsSeeds())
        {
            byte[] file = Bytes(writer);
            Seed("safetensors", name, file);
            long headerLength = BinaryPrimitives.ReadInt64LittleEndian(file);
            var header = new byte[8 + headerLength];
            BinaryPrimitives.WriteInt64LittleEndian(header, file.Length - 8 - headerLength);
            file.AsSpan(8, (int)headerLength).CopyTo(header.AsSpan(8));
            Seed("safetensors-header", name + ".header", header);
        }

        // Sharded index and shards.
        Seed("index", "valid.json", CheckpointIndexTargets.ValidIndex);
        Seed("index", "one-shard-only.json", Encoding.UTF8.GetBytes(
            $"{{\"weight_map\": {{\"a.weight\": \"{CheckpointIndexTargets.FirstShard}\"}}}}"));
        Seed("index", "metadata-types.json", Encoding.UTF8.GetBytes(
            $"{{\"metadata\": {{\"total_size\": 1e3, \"format\": \"pt\", \"nested\": {{\"a\": [1, 2]}}}}, \"weight_map\": {{\"b.bias\": \"{CheckpointIndexTargets.SecondShard}\", \"a.bias\": \"{CheckpointIndexTargets.FirstShard}\"}}}}"));
        Seed("index", "wrong-shard.json", Encoding.UTF8.GetBytes(
            $"{{\"weight_map\": {{\"a.weight\": \"{CheckpointIndexTargets.SecondShard}\"}}}}"));
        Seed("index", "empty-map.json", "{\"weight_map\": {}}"u8);
        Seed("shard", "valid.safetensors", CheckpointIndexTargets.ValidSecondShard);
        var extra = new SafetensorsWriter();
        extra.Add("b.weight", Matrix(4, 2, 1));
        extra.Add("b.bias", Matrix(1, 1, 2));
        extra.Add("b.extra", Matrix(2, 2, 3), SafetensorsDType.BF16);
        extra.SetMetadata("format", "pt");
        Seed("shard", "extra-tensor.safetensors", Bytes(extra));

        // Hugging Face configs: the real ones, and variants through the other branches.
        foreach (string model in new[] { "llama-shakespeare-char", "gpt2-shakespeare-char", "tinystories-656k" })
        {
            Seed("config", model + ".json", File.ReadAllBytes(Path.Combine(SharedData, model, "config.json")));
        }

        Seed("config", "llama-rope-parameters.json", """
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1,
             "num_attention_heads": 4, "head_dim": 16, "vocab_size": 65, "max_position_embeddings": 128,
             "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}, "rms_norm_eps": 1e-5, "tie_word_embeddings": true}
            """u8);
        Seed("config", "gpt2-minimal.json", """
            {"architectures": ["GPT2LMHeadModel"], "n_embd": 32, "n_layer": 1, "n_head": 2, "n_inner": null, "vocab_size": 65, "n_positions": 64,
             "activation_function": "gelu_pytorch_tanh", "layer_norm_epsilon": 1e-5}
            """u8);
        Seed("config", "other-architecture.json", """{"architectures": ["MistralForCausalLM"], "hidden_size": 64}"""u8);

        // Compressed tensors in the library's own format, one file per kind.
        foreach ((string name, CompressedTensor tensor) in CompressedSeeds())
        {
            var writer = new SafetensorsWriter();
            CompressedTensorTargets.AllKinds.Write(writer, "layer.weight", tensor);
            Seed("compressed-tensor", name + ".safetensors", Bytes(writer));
        }

        // compressed-tensors checkpoints: quantization_config, then model.safetensors.
        foreach ((string name, CompressedTensor tensor) in CodecSeeds())
        {
            string folder = Path.Combine(FuzzScratch.Folder, "codec-seed");
            var writer = new CompressedCheckpointWriter();
            writer.AddQuantized("model.layers.0.mlp.up_proj", tensor);
            writer.AddDense("lm_head.weight", Matrix(2, 4, 5), SafetensorsDType.F32);
            writer.Save(folder, new JsonObject { ["architectures"] = new JsonArray("LlamaForCausalLM") }, ["lm_head"]);
            byte[] config = Encoding.UTF8.GetBytes(JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!["quantization_config"]!.ToJsonString());
            byte[] model = File.ReadAllBytes(Path.Combine(folder, "model.safetensors"));
            var seed = new byte[4 + config.Length + model.Length];
            BinaryPrimitives.WriteUInt32LittleEndian(seed, (uint)config.Length);
            config.CopyTo(seed, 4);
            model.CopyTo(seed, 4 + config.Length);
            Seed("compressed-tensors-codec", name + ".bin", seed);
            Directory.Delete(folder, recursive: true);
        }

        // Recipes: the documented example and the test's every-field recipe.
        Seed("recipe", "documented-example.json", """
            { "stages": [
                { "name": "mlp-int4-gptq", "scheme": "W4A16", "method": "gptq", "targets": ["re:.*mlp\\..*"], "ignore": ["lm_head"],
                  "weights": { "format": "int4", "symmetric": true, "strategy": "group", "group_size": 128 },
                  "gptq": { "block_size": 128, "dampening_frac": 0.01, "actorder": true, "static_groups": false },
                  "overrides": [ { "targets": ["re:.*down_proj"], "weights": { "format": "int8", "strategy": "channel" } } ] },
                { "name": "attention-fp8", "scheme": "FP8", "targets": ["re:.*self_attn\\..*"] } ] }
            """u8);
        Seed("recipe", "every-field.json", """
            { // comments and trailing commas are accepted
              "stages": [
                { "weights": { "format": "INT3", "symmetric": false, "group_size": 64, "scale_dtype": "bfloat16",
                               "clipping": { "grid": 50, "max_shrink": 0.8, "norm": 2.4 }, "saturate": false, "symmetric_range": "full" },
                  "method": "gptq", "gptq": { "rotation": { "block_size": 32, "sign_seed": 7 }, "dampening_growth": 4,
                                              "max_dampening_attempts": 3 } },
                { "name": "blocks", "weights": { "format": "fp8_e4m3", "strategy": "block", "block_structure": [128, 64] }, },
                { "name": "mx", "scheme": "w4a16", "weights": { "format": "mxfp4" }, "ignore": [] },
              ] }
            """u8);
        Seed("recipe", "refused-strategy.json", """{ "stages": [ { "scheme": "W4A16", "weights": { "strategy": "grp" } } ] }"""u8);

        // BPE tokenizer files: a small synthetic one in the real file's layout.
        Seed("bpe", "tiny.json", """
            { "version": "1.0", "added_tokens": [ { "id": 0, "content": "<unk>", "special": true } ],
              "normalizer": { "type": "Sequence", "normalizers": [ { "type": "Prepend", "prepend": "▁" },
                              { "type": "Replace", "pattern": { "String": " " }, "content": "▁" } ] },
              "pre_tokenizer": null,
              "model": { "type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
                         "vocab": { "<unk>": 0, "<0x41>": 1, "<0xC3>": 2, "<0x9C>": 3, "▁": 4, "O": 5, "n": 6, "c": 7, "e": 8, "On": 9, "▁On": 10, "ce": 11, "▁Once": 12 },
                         "merges": [ "O n", "▁ On", "c e", ["▁On", "ce"] ] } }
            """u8);
        Seed("bpe", "no-unknown.json", """
            { "model": { "type": "BPE", "vocab": { "a": 0, "b": 1, "ab": 2 }, "merges": [ "a b" ] } }
            """u8);
        return count;
    }

    private static IEnumerable<(string Name, SafetensorsWriter Writer)> SafetensorsSeeds()
    {
        // The real Llama checkpoint's first tensors: names, dtypes, ranks and metadata, at small shapes.
        using (SafetensorsFile real = SafetensorsFile.Open(Path.Combine(SharedData, "llama-shakespeare-char", "model.safetensors")))
        {
            var writer = new SafetensorsWriter();
            foreach ((string key, string value) in real.Metadata)
            {
                writer.SetMetadata(key, value);
            }

            int seed = 0;
            foreach (SafetensorsTensorInfo info in real.Tensors.Take(6))
            {
                int[] shape = info.Shape.Select(d => (int)Math.Min(d, 3)).ToArray();
                writer.Add(info.Name, Matrix(shape, seed++), info.DType);
            }

            yield return ("llama-small", writer);
        }

        SafetensorsDType[] dtypes = Enum.GetValues<SafetensorsDType>();
        var all = new SafetensorsWriter();
        for (int i = 0; i < dtypes.Length; i++)
        {
            var bytes = new byte[3 * dtypes[i].ElementSize()];
            new Random(i).NextBytes(bytes);
            all.Add($"t.{dtypes[i]}", dtypes[i], [3], bytes);
        }

        yield return ("every-dtype", all);

        var edge = new SafetensorsWriter();
        edge.Add("scalar", SafetensorsDType.F32, [], BitConverter.GetBytes(1.5f));
        edge.Add("empty", SafetensorsDType.F16, [0, 4], ReadOnlyMemory<byte>.Empty);
        edge.Add("row", SafetensorsDType.BF16, [1, 2], new byte[] { 0x80, 0x3F, 0x00, 0xC0 });
        edge.SetMetadata("format", "pt");
        yield return ("scalar-and-empty", edge);

        var metadataOnly = new SafetensorsWriter();
        metadataOnly.SetMetadata("note", "no tensors");
        yield return ("metadata-only", metadataOnly);
        yield return ("no-tensors", new SafetensorsWriter());
    }

    private static IEnumerable<(string Name, CompressedTensor Tensor)> CompressedSeeds()
    {
        DenseTensor w = Matrix([4, 32], 11);
        yield return ("dense", new UncompressedTensor(Matrix([2, 3], 12)));
        yield return ("int4-g16", (RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(16) }).CreateCompressor().Quantize(w));
        yield return ("int8-channel-asym", (RtnOptions.W8PerChannel with { Symmetric = false }).CreateCompressor().Quantize(w));
        yield return ("fp8-channel", RtnOptions.Fp8PerChannel.CreateCompressor().Quantize(w));
        yield return ("mxfp4", RtnOptions.Mxfp4.CreateCompressor().Quantize(w));
        yield return ("nvfp4", RtnOptions.Nvfp4.CreateCompressor().Quantize(w));
        yield return ("nf4", RtnOptions.Nf4.CreateCompressor().Quantize(w));
        yield return ("trit-planes", new TritPlaneQuantizer(new TritPlaneOptions()).Compress(w, CompressionContext.Default));
        yield return ("gptq-actorder", Gptq(w, actOrder: true));
        PrunedTensor pruned = new MagnitudePruner(new MagnitudePruningOptions { Sparsity = 0.5 }).Prune(w);
        yield return ("pruned", pruned);
        yield return ("csr", CsrTensor.FromPruned(pruned));
        yield return ("bsr", BsrTensor.FromPruned(pruned, 2, 4));
        yield return ("2-4", SemiStructuredTensor.FromPruned(new NofMPruner(NofMOptions.TwoOfFour).Prune(w), 2, 4));
        yield return ("lowrank", new LowRankOptions { Rank = RankRule.Fixed(2) }.CreateCompressor().Factorize(w));
        yield return ("residual", new ResidualTensor(RtnOptions.W8PerChannel.CreateCompressor().Quantize(w),
            new LowRankOptions { Rank = RankRule.Fixed(1) }.CreateCompressor().Factorize(w)));
    }

    private static IEnumerable<(string Name, CompressedTensor Tensor)> CodecSeeds()
    {
        DenseTensor w = Matrix([4, 64], 21);
        yield return ("int4-g32", (RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) }).CreateCompressor().Quantize(w));
        yield return ("int8-channel-asym", (RtnOptions.W8PerChannel with { Symmetric = false }).CreateCompressor().Quantize(w));
        yield return ("int4-tensor-asym", (RtnOptions.W4Group128 with { Granularity = Granularity.PerTensor, Symmetric = false }).CreateCompressor().Quantize(w));
        yield return ("fp8-channel", RtnOptions.Fp8PerChannel.CreateCompressor().Quantize(w));
        yield return ("mxfp4", RtnOptions.Mxfp4.CreateCompressor().Quantize(w));
        yield return ("nvfp4", RtnOptions.Nvfp4.CreateCompressor().Quantize(w));
        yield return ("gptq-actorder", Gptq(w, actOrder: true));
    }

    private static GptqTensor Gptq(DenseTensor weight, bool actOrder)
    {
        int columns = weight.Shape[1];
        DenseTensor x = Matrix([64, columns], 31);
        for (int i = 0; i < x.Span.Length; i += 17)
        {
            x.Span[i] *= 8;                                          // uneven diag(H), so act-order permutes
        }

        var hessian = new HessianAccumulator(columns);
        hessian.Add(x);
        return new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(16) }, ActOrder = actOrder })
            .Quantize(weight, CompressionContext.Default with { InputHessian = hessian });
    }

    private static DenseTensor Matrix(int rows, int columns, int seed) => Matrix([rows, columns], seed);

    private static DenseTensor Matrix(int[] shape, int seed)
    {
        var random = new Random(seed);
        var tensor = new DenseTensor(shape);
        for (int i = 0; i < tensor.Span.Length; i++)
        {
            tensor.Span[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return tensor;
    }

    private static byte[] Bytes(SafetensorsWriter writer)
    {
        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        return stream.ToArray();
    }
}
