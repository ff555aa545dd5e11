// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>
/// Saves quantized models as Hugging Face folders in the compressed-tensors layout (what llm-compressor writes and
/// vLLM reads): <c>model.safetensors</c> with <c>weight_packed</c>/<c>weight_scale</c>/… per quantized layer and every
/// other parameter in the dtype it was loaded from, and <c>config.json</c> with its <c>quantization_config</c>.
/// <see cref="HuggingFaceModels.Load"/> reads such folders back into <see cref="QuantizedLinear"/> layers. A layer with
/// declared input activations (<see cref="QuantizedLinear.InputActivations"/>, compressed-tensors' <c>FP8_DYNAMIC</c>) is
/// written with its group's <c>input_activations</c> and read back with them, simulated in its forward pass.
/// </summary>
/// <remarks>
/// The bytes equal those of <see cref="CheckpointQuantizer"/> run on the original checkpoint with the same options
/// (round to nearest), which never loads the model. GPT-2's quantized <c>Conv1D</c> layers are written in the linear
/// layout [out, in] (compressed-tensors has no Conv1D layout); its dense ones keep the checkpoint's [in, out].
/// </remarks>
public static class CompressedModels
{
    /// <summary>Saves a packed model (its <see cref="QuantizedLinear"/> layers, from <see cref="Quantizer.Pack"/> or a
    /// compressed checkpoint).</summary>
    /// <param name="model">A model loaded by <see cref="HuggingFaceModels.Load"/> (its config.json is written back).</param>
    /// <param name="folder">The output folder.</param>
    /// <param name="ignore">Patterns recorded as <c>quantization_config.ignore</c>; default <c>lm_head</c>.</param>
    /// <exception cref="InvalidOperationException">The model has no quantized layer, or no source config.json.</exception>
    /// <exception cref="NotSupportedException">A layer's format has no compressed-tensors layout.</exception>
    public static void Save(CausalLanguageModel model, string folder, IEnumerable<string>? ignore = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var weights = model.CanonicalModules().Where(m => m.Module is QuantizedLinear)
            .ToDictionary(m => m.Name, m => (((QuantizedLinear)m.Module).Weight, ((QuantizedLinear)m.Module).InputActivations));
        Save(model, weights, folder, ignore);
    }

    /// <summary>Saves a fake-quantized model with the quantized weights of its report.</summary>
    /// <exception cref="ArgumentException">A layer of the report carries no weight.</exception>
    public static void Save(CausalLanguageModel model, QuantizationReport report, string folder, IEnumerable<string>? ignore = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(report);
        var weights = report.Layers.ToDictionary(l => l.Name,
            l => (l.Weight ?? throw new ArgumentException($"The report's layer '{l.Name}' carries no weight.", nameof(report)), l.InputActivations));
        Save(model, weights, folder, ignore);
    }

    private static void Save(CausalLanguageModel model, Dictionary<string, (CompressedTensor Weight, ActivationQuantization? Activations)> weights,
        string folder, IEnumerable<string>? ignore)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (weights.Count == 0)
        {
            throw new InvalidOperationException("The model has no quantized layer to save; quantize it (and Pack it) first.");
        }

        string configText = model.SourceConfigJson
            ?? throw new InvalidOperationException("The model was not loaded from a Hugging Face folder, so there is no config.json to save with it.");
        var writer = new CompressedCheckpointWriter();
        foreach ((string module, (CompressedTensor weight, ActivationQuantization? activations)) in weights)
        {
            (string stored, _) = model.CheckpointNames(module + ".weight").First();
            writer.AddQuantized(stored[..^".weight".Length], weight, activations);
        }

        using (torch.no_grad())
        {
            foreach ((string name, Parameter parameter) in model.named_parameters().DistinctBy(p => p.name))
            {
                if (name.EndsWith(".weight", StringComparison.Ordinal) && weights.ContainsKey(name[..^".weight".Length]))
                {
                    continue;           // written quantized (a fake-quantized model still holds the dense copy)
                }

                (string stored, bool transposed) = model.CheckpointNames(name).First();
                using Tensor view = transposed ? parameter.t() : parameter.alias();
                using Tensor oriented = view.contiguous();
                SafetensorsDType dtype = model.SourceDTypes.TryGetValue(name, out SafetensorsDType d) ? d : SafetensorsDType.F32;
                writer.AddDense(stored, oriented.ToDenseTensor(), dtype);
            }
        }

        JsonObject config = JsonNode.Parse(configText, documentOptions: new System.Text.Json.JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
            ?? throw new InvalidDataException("The model's config.json is not a JSON object.");
        config.Remove("quantization_config");
        writer.Save(folder, config, ignore ?? ["lm_head"]);
    }

    /// <summary>Replaces the layers a compressed checkpoint stores quantized by <see cref="QuantizedLinear"/> modules
    /// holding its packed weights and declared input-activation quantization (biases and everything else are loaded
    /// afterwards as usual).</summary>
    internal static void ReplaceQuantizedLayers(CausalLanguageModel model, JsonObject quantizationConfig, SafetensorsCheckpoint checkpoint)
    {
        IReadOnlyDictionary<string, CompressedModuleScheme> stored = CompressedTensorsCodec.SchemesOf(quantizationConfig, checkpoint);
        var linear = model.CanonicalModules().Where(m => m.Module is Linear).Select(m => (m.Name, (Linear)m.Module)).ToArray();
        var found = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string name, Linear layer) in linear)
        {
            foreach ((string storedName, _) in model.CheckpointNames(name + ".weight"))
            {
                string module = storedName[..^".weight".Length];
                if (stored.TryGetValue(module, out var scheme))
                {
                    CompressedTensor weight = CompressedTensorsCodec.Read(checkpoint, module, scheme.Format, scheme.Weights);
                    if (weight.Rows != layer.out_features || weight.Columns != layer.in_features)
                    {
                        throw new InvalidDataException(
                            $"{checkpoint.Path}: '{module}' is stored as [{weight.Rows}, {weight.Columns}]; the model needs [{layer.out_features}, {layer.in_features}].");
                    }

                    model.ReplaceLinear(name, new QuantizedLinear(weight, layer.bias, scheme.InputActivations));
                    found.Add(module);
                    break;
                }
            }
        }

        string[] unused = stored.Keys.Where(k => !found.Contains(k)).ToArray();
        if (unused.Length > 0)
        {
            throw new InvalidDataException($"{checkpoint.Path}: quantized tensors match no linear layer of {model.Architecture}: {string.Join(", ", unused.Take(10))}.");
        }
    }
}
