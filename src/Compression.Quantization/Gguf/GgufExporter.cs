// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading;
using Compression.Safetensors;

namespace Compression.Quantization.Gguf;

/// <summary>
/// Converts a Hugging Face Llama checkpoint folder (config.json, model.safetensors or a sharded index, optionally
/// tokenizer.json and tokenizer_config.json) into a single GGUF file that llama.cpp loads: llama.cpp's tensor names,
/// its <c>llama.*</c> hyperparameter keys, the Q/K row order its rotary embedding expects, and the tokenizer
/// vocabulary.
/// </summary>
/// <remarks>
/// <para>Tensors: <c>model.embed_tokens</c> → <c>token_embd</c>; per layer N <c>self_attn.{q,k,v,o}_proj</c> →
/// <c>blk.N.attn_{q,k,v,output}</c>, <c>mlp.{gate,up,down}_proj</c> → <c>blk.N.ffn_{gate,up,down}</c>,
/// <c>input_layernorm</c> → <c>blk.N.attn_norm</c>, <c>post_attention_layernorm</c> → <c>blk.N.ffn_norm</c>;
/// <c>model.norm</c> → <c>output_norm</c>; <c>lm_head</c> → <c>output</c>. With tied embeddings no <c>output</c> is
/// written (llama.cpp then uses <c>token_embd</c>); a checkpoint that stores only <c>lm_head</c> (its safetensors
/// metadata naming it as the embedding's alias) gives <c>token_embd</c> from it.</para>
/// <para>Rotary embedding: Hugging Face rotates the two halves of each head (<c>rotate_half</c>), llama.cpp's Llama
/// rotates adjacent pairs. The Q and K rows are reordered per head so that the pair (2i, 2i+1) of a GGUF head is the
/// pair (i, i + d/2) of the Hugging Face head (d the head size; K with the key-value head count), as llama.cpp's
/// converter does.</para>
/// <para>See docs/gguf.md for the metadata keys and type rules.</para>
/// </remarks>
public static class GgufExporter
{
    /// <summary>The progress stage reported per tensor.</summary>
    public const string ProgressStage = "gguf";

    private static readonly Regex LayerTensor = new(@"^model\.layers\.(\d+)\.(.+)\.weight$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    private static readonly Dictionary<string, string> LayerNames = new(StringComparer.Ordinal)
    {
        ["self_attn.q_proj"] = "attn_q",
        ["self_attn.k_proj"] = "attn_k",
        ["self_attn.v_proj"] = "attn_v",
        ["self_attn.o_proj"] = "attn_output",
        ["mlp.gate_proj"] = "ffn_gate",
        ["mlp.up_proj"] = "ffn_up",
        ["mlp.down_proj"] = "ffn_down",
        ["input_layernorm"] = "attn_norm",
        ["post_attention_layernorm"] = "ffn_norm",
    };

    /// <summary>Exports the Llama checkpoint in <paramref name="inputFolder"/> to <paramref name="outputPath"/>.</summary>
    /// <param name="inputFolder">A folder with config.json (model_type <c>llama</c>) and its safetensors.</param>
    /// <param name="outputPath">The .gguf file to create or replace (written atomically).</param>
    /// <param name="options">Tensor type, alignment, name; null for <see cref="GgufExportOptions.Default"/>.</param>
    /// <param name="progress">One report per tensor converted and written (stage <see cref="ProgressStage"/>).</param>
    /// <param name="cancellationToken">Checked between tensors and while the file is written; a cancelled export leaves
    /// <paramref name="outputPath"/> as it was.</param>
    /// <returns>The tensors written and the file's size.</returns>
    /// <exception cref="ArgumentException">A path is empty, the input folder does not exist or has no config.json, the
    /// output path is a folder, or the options are out of range.</exception>
    /// <exception cref="NotSupportedException">The model is not a Llama, uses rope scaling, or its tokenizer is not a
    /// SentencePiece-style BPE.</exception>
    /// <exception cref="InvalidDataException">The config, tokenizer or checkpoint is malformed, a tensor is missing, a
    /// tensor has no llama.cpp name, or a weight is NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <example>
    /// <code>
    /// GgufExportResult result = GgufExporter.Export("tinystories-656k", "tinystories-q8_0.gguf",
    ///     GgufExportOptions.Default with { TensorType = GgmlType.Q8_0 });
    /// </code>
    /// </example>
    public static GgufExportResult Export(string inputFolder, string outputPath, GgufExportOptions? options = null,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(inputFolder);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        options ??= GgufExportOptions.Default;
        try
        {
            options.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentException($"Invalid GGUF export options: {e.Message}", nameof(options), e);
        }

        if (!Directory.Exists(inputFolder))
        {
            throw new ArgumentException($"The input folder '{inputFolder}' does not exist.", nameof(inputFolder));
        }

        string configPath = Path.Combine(inputFolder, "config.json");
        if (!File.Exists(configPath))
        {
            throw new ArgumentException($"'{inputFolder}' has no config.json.", nameof(inputFolder));
        }

        if (Directory.Exists(outputPath))
        {
            throw new ArgumentException($"The output path '{outputPath}' is a folder; give a file name (e.g. model.gguf).", nameof(outputPath));
        }

        var clock = Stopwatch.StartNew();
        JsonObject config = ReadJson(configPath);
        LlamaHyperparameters hp = LlamaHyperparameters.From(config, configPath);
        var writer = new GgufWriter(options.Alignment);
        string name = options.Name ?? Path.GetFileName(Path.GetFullPath(inputFolder).TrimEnd(Path.DirectorySeparatorChar));
        writer.SetMetadata("general.architecture", GgufValue.String("llama"));
        writer.SetMetadata("general.name", GgufValue.String(name));
        writer.SetMetadata("general.file_type", GgufValue.UInt32(FileType(options.TensorType)));
        writer.SetMetadata("general.quantization_version", GgufValue.UInt32(2));
        hp.WriteTo(writer);

        string tokenizerPath = Path.Combine(inputFolder, "tokenizer.json");
        string tokenizerModel = "none";
        if (options.IncludeTokenizer && File.Exists(tokenizerPath))
        {
            string tokenizerConfigPath = Path.Combine(inputFolder, "tokenizer_config.json");
            JsonObject? tokenizerConfig = File.Exists(tokenizerConfigPath) ? ReadJson(tokenizerConfigPath) : null;
            GgufLlamaVocabulary.From(ReadJson(tokenizerPath), tokenizerPath, tokenizerConfig, config, hp.VocabSize).WriteTo(writer);
            tokenizerModel = "llama";
        }
        else
        {
            writer.SetMetadata("tokenizer.ggml.model", GgufValue.String("none"));
        }

        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(inputFolder);
        List<(string Gguf, string Source, int Heads)> plan = Plan(checkpoint, hp);
        // Each tensor is read, permuted and encoded while the file is written, so memory holds one tensor at a time,
        // not the whole model; the progress reports follow the writing.
        var records = new List<GgufTensorRecord>();
        int written = 0;
        foreach ((string ggufName, string source, int heads) in plan)
        {
            SafetensorsTensorInfo info = checkpoint.GetInfo(source);
            long[] shape = info.Shape.Select(d => (long)d).ToArray();
            if (shape.Length is not (1 or 2))
            {
                throw new InvalidDataException($"{checkpoint.Path}: '{source}' has {shape.Length} dimensions; a Llama checkpoint has vectors and matrices only.");
            }

            GgmlType type = shape.Length == 1 ? GgmlType.F32
                : shape[1] % GgmlQuantization.BlockSize(options.TensorType) == 0 ? options.TensorType : GgmlType.F16;
            writer.AddTensor(ggufName, type, shape, stream =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                var values = new float[checked((int)shape.Aggregate(1L, (x, y) => x * y))];
                checkpoint.FileOf(source).ReadDense(source, values);
                if (heads > 0)
                {
                    values = PermuteForRope(values, (int)shape[0], (int)shape[1], heads, source);
                }

                try
                {
                    stream.Write(shape.Length == 2
                        ? GgmlQuantization.QuantizeRows(values, (int)shape[0], (int)shape[1], type)
                        : GgmlQuantization.Quantize(values, type));
                }
                catch (Exception e) when (e is ArgumentException || e is AggregateException { InnerException: ArgumentException })
                {
                    // A NaN or infinite weight is bad data in the checkpoint, not a bad argument of the caller.
                    throw new InvalidDataException($"{checkpoint.Path}: '{source}': {(e as AggregateException)?.InnerException?.Message ?? e.Message}", e);
                }
                progress?.Report(new CompressionProgress(ProgressStage, ggufName, ++written, plan.Count));
            });
            records.Add(new GgufTensorRecord(ggufName, source, type, shape, heads > 0));
        }

        cancellationToken.ThrowIfCancellationRequested();
        writer.Save(outputPath, cancellationToken);
        return new GgufExportResult(Path.GetFullPath(outputPath), records, tokenizerModel, new FileInfo(outputPath).Length, clock.Elapsed);
    }

    /// <summary>The ggml file type llama.cpp records for a model whose matrices are mostly <paramref name="type"/>
    /// (<c>llama_ftype</c>).</summary>
    internal static uint FileType(GgmlType type) => type switch
    {
        GgmlType.F32 => 0,
        GgmlType.F16 => 1,
        GgmlType.Q4_0 => 2,
        GgmlType.Q4_1 => 3,
        GgmlType.Q8_0 => 7,
        GgmlType.Q5_0 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a supported ggml type."),
    };

    /// <summary>
    /// Reorders the rows of a Q or K projection [heads·d, columns] from Hugging Face's half-split rotary layout to
    /// llama.cpp's interleaved one: GGUF row h·d + 2i + j is Hugging Face row h·d + j·d/2 + i (i &lt; d/2, j ∈ {0, 1}).
    /// </summary>
    internal static float[] PermuteForRope(float[] weight, int rows, int columns, int heads, string name)
    {
        if (rows % heads != 0 || rows / heads % 2 != 0)
        {
            throw new InvalidDataException($"'{name}' has {rows} rows, not {heads} heads of an even size.");
        }

        int d = rows / heads, half = d / 2;
        var result = new float[weight.Length];
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < half; i++)
            {
                for (int j = 0; j < 2; j++)
                {
                    Array.Copy(weight, (long)(h * d + j * half + i) * columns, result, (long)(h * d + 2 * i + j) * columns, columns);
                }
            }
        }

        return result;
    }

    /// <summary>Which checkpoint tensor becomes which GGUF tensor, in llama.cpp's order (embedding, layers, output), and
    /// the head count to permute it with (0: not a rotary projection).</summary>
    private static List<(string Gguf, string Source, int Heads)> Plan(SafetensorsCheckpoint checkpoint, LlamaHyperparameters hp)
    {
        const string embedding = "model.embed_tokens.weight", head = "lm_head.weight";
        var plan = new List<(string, string, int)>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        string? embeddingSource = checkpoint.Contains(embedding) ? embedding
            : checkpoint.Metadata.TryGetValue(embedding, out string? alias) && checkpoint.Contains(alias) ? alias
            : hp.TiedEmbeddings && checkpoint.Contains(head) ? head
            : null;
        if (embeddingSource is null)
        {
            throw new InvalidDataException($"{checkpoint.Path}: no '{embedding}' (nor an alias of it, nor a tied '{head}').");
        }

        plan.Add(("token_embd.weight", embeddingSource, 0));
        used.Add(embeddingSource);
        var layers = new SortedDictionary<int, SortedDictionary<int, (string, string, int)>>();
        string[] order = [.. LayerNames.Keys];
        foreach (SafetensorsTensorInfo info in checkpoint.Tensors)
        {
            Match match = LayerTensor.Match(info.Name);
            if (!match.Success)
            {
                continue;
            }

            if (!int.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int layer) || layer >= hp.BlockCount
                || !LayerNames.TryGetValue(match.Groups[2].Value, out string? part))
            {
                throw new InvalidDataException($"{checkpoint.Path}: '{info.Name}' has no llama.cpp name (a layer ≥ {hp.BlockCount}, or an unknown part).");
            }

            int heads = part == "attn_q" ? hp.HeadCount : part == "attn_k" ? hp.HeadCountKv : 0;
            if (!layers.TryGetValue(layer, out var parts))
            {
                layers[layer] = parts = [];
            }

            parts[Array.IndexOf(order, match.Groups[2].Value)] = ($"blk.{layer}.{part}.weight", info.Name, heads);
            used.Add(info.Name);
        }

        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            if (!layers.TryGetValue(layer, out var parts) || parts.Count != order.Length)
            {
                string[] missing = order.Where((_, k) => parts is null || !parts.ContainsKey(k)).ToArray();
                throw new InvalidDataException($"{checkpoint.Path}: layer {layer} lacks {string.Join(", ", missing)}.");
            }

            plan.AddRange(parts.Values);
        }

        if (!checkpoint.Contains("model.norm.weight"))
        {
            throw new InvalidDataException($"{checkpoint.Path}: no 'model.norm.weight'.");
        }

        plan.Add(("output_norm.weight", "model.norm.weight", 0));
        used.Add("model.norm.weight");
        if (!hp.TiedEmbeddings)
        {
            if (!checkpoint.Contains(head))
            {
                throw new InvalidDataException($"{checkpoint.Path}: the embeddings are not tied and there is no '{head}'.");
            }

            plan.Add(("output.weight", head, 0));
        }

        used.Add(head);
        string[] unknown = checkpoint.Tensors.Select(t => t.Name)
            .Where(n => !used.Contains(n) && !n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)).ToArray();
        if (unknown.Length > 0)
        {
            throw new InvalidDataException($"{checkpoint.Path}: tensors with no llama.cpp name: {string.Join(", ", unknown.Take(10))}.");
        }

        return plan;
    }

    internal static JsonObject ReadJson(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        ReadOnlySpan<byte> json = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? bytes.AsSpan(3) : bytes;
        try
        {
            return JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                ?? throw new InvalidDataException($"{path}: not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }
}
