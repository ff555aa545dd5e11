// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading;
using Compression.Safetensors;
using Compression.Tensors;

namespace Compression.Quantization.Checkpoints;

/// <summary>
/// Weight-only round-to-nearest quantization of a Hugging Face safetensors checkpoint, tensor by tensor, without
/// loading a model (and without TorchSharp): the output folder is a compressed-tensors checkpoint byte-identical to
/// what <c>Quantizer.Apply</c> + <c>CompressedModels.Save</c> write for the same options.
/// </summary>
/// <remarks>
/// <para>The input stays memory-mapped; one weight is decoded to float32 at a time and only the compressed results
/// are held until the file is written; unquantized tensors are copied byte for byte when the output is written. The
/// input folder is never modified.</para>
/// <para>What counts as a linear layer without a model: every 2-D floating <c>*.weight</c> except embeddings (modules
/// whose last name part contains <c>embed</c>, or GPT-2's <c>wte</c>/<c>wpe</c>). GPT-2 (<c>model_type</c> gpt2)
/// stores its <c>c_attn</c>, <c>c_proj</c> and <c>c_fc</c> weights as Conv1D [in, out]; they are transposed to
/// [out, in] before quantizing, as the model path does.</para>
/// </remarks>
public static class CheckpointQuantizer
{
    /// <summary>Quantizes the targeted weights of the checkpoint in <paramref name="inputFolder"/> into
    /// <paramref name="outputFolder"/>.</summary>
    /// <param name="inputFolder">A folder with config.json and model.safetensors (or a sharded index).</param>
    /// <param name="outputFolder">Where the compressed checkpoint goes; must differ from the input.</param>
    /// <param name="options">Format, targets, ignores and overrides; the method must be round to nearest.</param>
    /// <param name="progress">One report per quantized weight.</param>
    /// <param name="cancellationToken">Checked between weights; a cancelled run writes nothing.</param>
    /// <returns>The quantized modules with their storage.</returns>
    /// <exception cref="ArgumentException">GPTQ asked for, the same input and output folder, or a pattern that matches
    /// no linear weight.</exception>
    /// <exception cref="FileNotFoundException">The input has no config.json.</exception>
    /// <exception cref="NotSupportedException">A format has no compressed-tensors layout.</exception>
    public static CheckpointQuantizationResult Quantize(string inputFolder, string outputFolder, QuantizerOptions options,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(inputFolder);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Method != QuantizationMethod.RoundToNearest)
        {
            throw new ArgumentException("Quantizing a checkpoint without its model is round to nearest only; GPTQ needs the model (Quantizer.Apply).", nameof(options));
        }

        if (string.Equals(Path.GetFullPath(inputFolder).TrimEnd(Path.DirectorySeparatorChar), Path.GetFullPath(outputFolder).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal))
        {
            throw new ArgumentException("The output folder must differ from the input folder (the input is never modified).", nameof(outputFolder));
        }

        string configPath = Path.Combine(inputFolder, "config.json");
        if (!File.Exists(configPath))
        {
            throw new FileNotFoundException($"'{inputFolder}' has no config.json.", configPath);
        }

        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new InvalidDataException($"{configPath}: not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{configPath}: not valid JSON ({e.Message}).", e);
        }

        if (config.ContainsKey("quantization_config"))
        {
            throw new ArgumentException($"'{inputFolder}' is already quantized (its config.json has a quantization_config).", nameof(inputFolder));
        }

        bool gpt2 = config["model_type"] is JsonValue type && type.TryGetValue(out string? modelType) && modelType == "gpt2";
        var clock = Stopwatch.StartNew();
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(inputFolder);
        string[] linear = checkpoint.Tensors.Where(IsLinearWeight).Select(t => t.Name[..^".weight".Length]).ToArray();
        string[] targets = options.SelectTargets(linear);
        var targetSet = new HashSet<string>(targets, StringComparer.Ordinal);
        var writer = new CompressedCheckpointWriter();
        var modules = new List<CheckpointModule>();
        long before = 0, after = 0;
        foreach (SafetensorsTensorInfo info in checkpoint.Tensors)
        {
            string module = info.Name.EndsWith(".weight", StringComparison.Ordinal) ? info.Name[..^".weight".Length] : "";
            if (!targetSet.Contains(module))
            {
                SafetensorsFile file = checkpoint.FileOf(info.Name);
                writer.AddDense(info.Name, info.DType, info.Shape.ToArray(), stream => file.CopyTo(info.Name, stream));
                continue;
            }

            cancellationToken.ThrowIfCancellationRequested();
            DenseTensor weight = checkpoint.ReadDense(info.Name);
            if (gpt2 && IsConv1D(module))
            {
                weight = Transpose(weight);
            }

            RtnOptions format = options.OptionsFor(module);
            CompressedTensor quantized = new RoundToNearestQuantizer(format).Compress(weight,
                CompressionContext.Default with { LayerName = module, CancellationToken = cancellationToken });
            writer.AddQuantized(module, quantized);
            modules.Add(new CheckpointModule(module, CompressedTensorsCodec.FormatOf(quantized), weight.Rows, weight.Columns,
                (double)quantized.StorageBits / weight.Length));
            before += 8L * info.ByteLength;
            after += quantized.StorageBits;
            progress?.Report(new CompressionProgress("quantize", module, modules.Count, targets.Length));
        }

        cancellationToken.ThrowIfCancellationRequested();
        writer.Save(outputFolder, config, options.Ignore);
        return new CheckpointQuantizationResult(modules, before, after, clock.Elapsed);
    }

    private static bool IsLinearWeight(SafetensorsTensorInfo info)
    {
        if (!info.Name.EndsWith(".weight", StringComparison.Ordinal) || info.Shape.Count != 2 ||
            info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F64))
        {
            return false;
        }

        string module = info.Name[..^".weight".Length];
        string last = module[(module.LastIndexOf('.') + 1)..];
        return !last.Contains("embed", StringComparison.OrdinalIgnoreCase) && last is not ("wte" or "wpe");
    }

    private static bool IsConv1D(string module) =>
        module.EndsWith(".c_attn", StringComparison.Ordinal) || module.EndsWith(".c_proj", StringComparison.Ordinal) ||
        module.EndsWith(".c_fc", StringComparison.Ordinal);

    private static DenseTensor Transpose(DenseTensor x)
    {
        int rows = x.Rows, columns = x.Columns;
        var result = new DenseTensor(columns, rows);
        ReadOnlySpan<float> source = x.Span;
        Span<float> destination = result.Span;
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                destination[c * rows + r] = source[r * columns + c];
            }
        }

        return result;
    }
}

/// <summary>One weight <see cref="CheckpointQuantizer"/> quantized.</summary>
/// <param name="Name">The module name.</param>
/// <param name="Format">The compressed-tensors format it was written in.</param>
/// <param name="Rows">Output features.</param>
/// <param name="Columns">Input features.</param>
/// <param name="BitsPerWeight">Storage bits per weight, scales included.</param>
public sealed record CheckpointModule(string Name, string Format, int Rows, int Columns, double BitsPerWeight);

/// <summary>What <see cref="CheckpointQuantizer.Quantize"/> did.</summary>
/// <param name="Modules">The quantized weights in checkpoint order.</param>
/// <param name="OriginalBits">Their storage in the input checkpoint.</param>
/// <param name="CompressedBits">Their storage after quantization.</param>
/// <param name="Elapsed">Wall-clock time, writing included.</param>
public sealed record CheckpointQuantizationResult(IReadOnlyList<CheckpointModule> Modules, long OriginalBits, long CompressedBits, TimeSpan Elapsed);
