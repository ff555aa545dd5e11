// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Compression.Safetensors;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>
/// Saves a model with dense linear layers (the original, or one pruned or factorised in place with its weights written
/// back) as a Hugging Face folder: <c>model.safetensors</c> under the checkpoint's own tensor names and dtypes, and the
/// <c>config.json</c> it was loaded from. <see cref="HuggingFaceModels.Load"/> and other Hugging Face readers load it.
/// </summary>
/// <remarks>
/// Pruned weights are stored as dense tensors with zeros: the file does not shrink (safetensors has no sparse layout).
/// Each parameter is written in the dtype it was loaded from, so a BF16 checkpoint stays BF16 (rounded to nearest
/// even). GPT-2's <c>Conv1D</c> weights go back to their stored [in, out] orientation. Tensors are sorted by name.
/// </remarks>
/// <example>
/// <code>
/// using CausalLanguageModel model = HuggingFaceModels.Load("../shared/data/llama-shakespeare-char");
/// Pruner.Apply(model, new PrunerOptions(new WandaOptions { Sparsity = 0.5 }.CreateCompressor()), calibration);
/// DenseModels.Save(model, "out/llama-wanda50");
/// </code>
/// </example>
public static class DenseModels
{
    /// <summary>Writes <c>model.safetensors</c> and <c>config.json</c> into <paramref name="folder"/> (created if
    /// needed), each to a temporary file first and then renamed into place.</summary>
    /// <param name="model">A model loaded by <see cref="HuggingFaceModels.Load"/> whose linear layers are all dense.</param>
    /// <param name="folder">The output folder.</param>
    /// <exception cref="InvalidOperationException">The model holds packed (<see cref="QuantizedLinear"/>) or factorised
    /// (<see cref="LowRankLinear"/>) layers, or it was not loaded from a Hugging Face folder.</exception>
    public static void Save(CausalLanguageModel model, string folder)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string? packed = model.CanonicalModules().FirstOrDefault(m => m.Module is QuantizedLinear or LowRankLinear).Name;
        if (packed is not null)
        {
            throw new InvalidOperationException(
                $"'{packed}' is not a dense linear layer; save packed models with CompressedModels.Save, or factorise with ReplaceModules = false.");
        }

        string configText = model.SourceConfigJson
            ?? throw new InvalidOperationException("The model was not loaded from a Hugging Face folder, so there is no config.json to save with it.");
        JsonObject config = JsonNode.Parse(configText, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
            ?? throw new InvalidDataException("The model's config.json is not a JSON object.");
        config.Remove("quantization_config");

        var writer = new SafetensorsWriter();
        using (torch.no_grad())
        {
            foreach ((string name, Parameter parameter) in model.named_parameters().DistinctBy(p => p.name).OrderBy(p => p.name, StringComparer.Ordinal))
            {
                (string stored, bool transposed) = model.CheckpointNames(name).First();
                using Tensor view = transposed ? parameter.t() : parameter.alias();
                using Tensor oriented = view.contiguous();
                SafetensorsDType dtype = model.SourceDTypes.TryGetValue(name, out SafetensorsDType d) ? d : SafetensorsDType.F32;
                writer.Add(stored, oriented.ToDenseTensor(), dtype);
            }
        }

        writer.SetMetadata("format", "pt");
        string json = config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
        Directory.CreateDirectory(folder);
        // Both files complete under hidden names first, then two renames back to back (as CompressedCheckpointWriter).
        using PreparedAtomicFile weights = AtomicFile.Prepare(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName), writer.WriteTo);
        using PreparedAtomicFile configFile = AtomicFile.Prepare(Path.Combine(folder, "config.json"), stream => stream.Write(Encoding.UTF8.GetBytes(json)));
        weights.Commit();
        configFile.Commit();
    }
}
