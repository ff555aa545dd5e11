// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text.Json.Nodes;
using Compression.Quantization;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.Tensors;

namespace Compression.Reliability.Worker;

/// <summary>
/// The in-memory path CheckpointQuantizer had before it streamed through a journal, kept as the reference its output
/// must equal bit for bit: every targeted weight quantized in memory and kept until one final
/// <see cref="CompressedCheckpointWriter.Save"/>. Memory grows with the checkpoint's compressed size. Llama-style
/// names only (no GPT-2 Conv1D transposition, which the synthetic checkpoints do not need).
/// </summary>
public static class InMemoryCheckpointReference
{
    /// <summary>Writes the reference output and returns the quantized module names in checkpoint order.</summary>
    public static IReadOnlyList<string> Quantize(string inputFolder, string outputFolder, QuantizerOptions options)
    {
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(inputFolder, "config.json")))!;
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(inputFolder);
        string[] linear = checkpoint.Tensors
            .Where(t => t.Name.EndsWith(".weight", StringComparison.Ordinal) && t.Shape.Count == 2 && !t.Name.Contains("embed", StringComparison.Ordinal))
            .Select(t => t.Name[..^".weight".Length]).ToArray();
        var targets = new HashSet<string>(options.SelectTargets(linear), StringComparer.Ordinal);
        var writer = new CompressedCheckpointWriter();
        var modules = new List<string>();
        foreach (SafetensorsTensorInfo info in checkpoint.Tensors)
        {
            string module = info.Name.EndsWith(".weight", StringComparison.Ordinal) ? info.Name[..^".weight".Length] : "";
            if (!targets.Contains(module))
            {
                SafetensorsFile file = checkpoint.FileOf(info.Name);
                writer.AddDense(info.Name, info.DType, info.Shape.ToArray(), stream => file.CopyTo(info.Name, stream));
                continue;
            }

            DenseTensor weight = checkpoint.ReadDense(info.Name);
            CompressedTensor quantized = new RoundToNearestQuantizer(options.OptionsFor(module)).Compress(weight,
                CompressionContext.Default with { LayerName = module });
            writer.AddQuantized(module, quantized);
            modules.Add(module);
        }

        writer.Save(outputFolder, config, options.Ignore);
        return modules;
    }
}
