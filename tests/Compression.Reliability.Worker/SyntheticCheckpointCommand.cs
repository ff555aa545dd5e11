// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Compression.Safetensors;

namespace Compression.Reliability.Worker;

/// <summary>
/// <c>make-synthetic-checkpoint &lt;folder&gt; &lt;bytes&gt; &lt;F32|BF16|F16&gt; &lt;seed&gt; [--hidden H] [--shard-bytes B]</c>:
/// writes a deterministic Llama-like checkpoint of about <c>bytes</c> bytes (config.json + model.safetensors, or shards
/// with an index), streaming: every tensor is produced in 64 Ki-element chunks from its own seeded generator while the
/// file is written, so memory stays flat whatever the size.
/// </summary>
/// <remarks>Layout for hidden size H (default 1024): embed_tokens [8H, H], per layer q/k/v/o_proj [H, H],
/// gate/up_proj [3H, H], down_proj [H, 3H] and two norms [H], a final norm and lm_head [8H, H]; as many layers as fit
/// in <c>bytes</c> (at least one). Prints one JSON line: layers, tensors, bytes written.</remarks>
[WorkerCommand("make-synthetic-checkpoint")]
internal static class SyntheticCheckpointCommand
{
    public static int Run(string[] args)
    {
        if (args.Length < 4)
        {
            Console.Error.WriteLine("usage: make-synthetic-checkpoint <folder> <bytes> <F32|BF16|F16> <seed> [--hidden H] [--shard-bytes B]");
            return 64;
        }

        string folder = args[0];
        long bytes = long.Parse(args[1], CultureInfo.InvariantCulture);
        SafetensorsDType dtype = Enum.Parse<SafetensorsDType>(args[2], ignoreCase: true);
        int seed = int.Parse(args[3], CultureInfo.InvariantCulture);
        int hidden = int.Parse(Option(args, "--hidden") ?? "1024", CultureInfo.InvariantCulture);
        long shardBytes = long.Parse(Option(args, "--shard-bytes") ?? "0", CultureInfo.InvariantCulture);
        (SafetensorsWriter writer, int layers) = Build(bytes, dtype, seed, hidden);
        Directory.CreateDirectory(folder);
        if (shardBytes > 0)
        {
            writer.SaveSharded(folder, shardBytes);
        }
        else
        {
            writer.Save(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName));
        }

        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = hidden,
            ["intermediate_size"] = 3 * hidden,
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = Math.Max(1, hidden / 64),
            ["num_key_value_heads"] = Math.Max(1, hidden / 64),
            ["vocab_size"] = 8 * hidden,
            ["rms_norm_eps"] = 1e-5,
            ["torch_dtype"] = dtype switch { SafetensorsDType.BF16 => "bfloat16", SafetensorsDType.F16 => "float16", _ => "float32" },
        };
        AtomicFile.Write(Path.Combine(folder, "config.json"), s => s.Write(Encoding.UTF8.GetBytes(config.ToJsonString() + "\n")));
        long total = writer.Tensors.Sum(t => t.ByteLength);
        Console.WriteLine($"{{\"layers\":{layers},\"tensors\":{writer.Tensors.Count},\"data_bytes\":{total}}}");
        return 0;
    }

    /// <summary>The checkpoint's tensors, deferred; the layer count fills <paramref name="bytes"/>.</summary>
    public static (SafetensorsWriter Writer, int Layers) Build(long bytes, SafetensorsDType dtype, int seed, int hidden)
    {
        int size = dtype.ElementSize();
        long h = hidden, inner = 3L * hidden, vocab = 8L * hidden;
        long fixedBytes = (2 * vocab * h + h) * size;
        long layerBytes = (4 * h * h + 3 * inner * h + 2 * h) * size;
        int layers = (int)Math.Max(1, (bytes - fixedBytes) / layerBytes);
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        int index = 0;
        void Add(string name, long[] shape, float center, float spread)
        {
            int tensorSeed = unchecked(seed * 1_000_003 + index++);
            writer.AddDeferred(name, dtype, shape, stream => Generate(stream, dtype, shape[0] * (shape.Length > 1 ? shape[1] : 1), tensorSeed, center, spread));
        }

        Add("model.embed_tokens.weight", [vocab, h], 0, 0.05f);
        for (int layer = 0; layer < layers; layer++)
        {
            string p = $"model.layers.{layer}.";
            Add(p + "input_layernorm.weight", [h], 1, 0.1f);
            Add(p + "self_attn.q_proj.weight", [h, h], 0, 0.05f);
            Add(p + "self_attn.k_proj.weight", [h, h], 0, 0.05f);
            Add(p + "self_attn.v_proj.weight", [h, h], 0, 0.05f);
            Add(p + "self_attn.o_proj.weight", [h, h], 0, 0.05f);
            Add(p + "post_attention_layernorm.weight", [h], 1, 0.1f);
            Add(p + "mlp.gate_proj.weight", [inner, h], 0, 0.05f);
            Add(p + "mlp.up_proj.weight", [inner, h], 0, 0.05f);
            Add(p + "mlp.down_proj.weight", [h, inner], 0, 0.05f);
        }

        Add("model.norm.weight", [h], 1, 0.1f);
        Add("lm_head.weight", [vocab, h], 0, 0.05f);
        return (writer, layers);
    }

    private static void Generate(Stream stream, SafetensorsDType dtype, long count, int seed, float center, float spread)
    {
        const int Chunk = 1 << 16;
        var random = new Random(seed);
        var values = new float[Chunk];
        var narrow = new ushort[Chunk];
        for (long done = 0; done < count; done += Chunk)
        {
            int n = (int)Math.Min(Chunk, count - done);
            for (int i = 0; i < n; i++)
            {
                // A sum of two uniforms: a bell-ish shape with occasional larger values, cheap to draw.
                values[i] = center + spread * (random.NextSingle() + random.NextSingle() - 1f);
            }

            switch (dtype)
            {
                case SafetensorsDType.F32:
                    stream.Write(MemoryMarshal.AsBytes(values.AsSpan(0, n)));
                    break;
                case SafetensorsDType.BF16:
                    for (int i = 0; i < n; i++)
                    {
                        narrow[i] = ((Compression.Tensors.BFloat16)values[i]).RawValue;
                    }

                    stream.Write(MemoryMarshal.AsBytes(narrow.AsSpan(0, n)));
                    break;
                case SafetensorsDType.F16:
                    for (int i = 0; i < n; i++)
                    {
                        narrow[i] = BitConverter.HalfToUInt16Bits((Half)values[i]);
                    }

                    stream.Write(MemoryMarshal.AsBytes(narrow.AsSpan(0, n)));
                    break;
                default:
                    throw new ArgumentException($"Synthetic checkpoints are F32, BF16 or F16, not {dtype}.", nameof(dtype));
            }
        }
    }

    internal static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
