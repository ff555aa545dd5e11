// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Compression.Safetensors;
using Compression.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Models;

/// <summary>
/// Builds TorchSharp models from Hugging Face checkpoint folders: <c>config.json</c> plus <c>model.safetensors</c>, or
/// shards listed in <c>model.safetensors.index.json</c>. BF16, F16 and F32 weights are read into float32.
/// </summary>
/// <example>
/// <code>
/// using CausalLanguageModel model = HuggingFaceModels.Load("../shared/data/llama-shakespeare-char");
/// using Tensor logits = model.forward(tokens);      // [batch, time, vocabulary]
/// </code>
/// </example>
public static class HuggingFaceModels
{
    /// <summary>The <c>architectures</c> this loader builds.</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = ["LlamaForCausalLM", "GPT2LMHeadModel"];

    /// <summary>Loads a checkpoint folder into a model in evaluation mode (float32, CPU).</summary>
    /// <exception cref="FileNotFoundException">The folder has no config.json or no weights.</exception>
    /// <exception cref="NotSupportedException">The architecture is not one of <see cref="SupportedArchitectures"/>.</exception>
    /// <exception cref="InvalidDataException">The config is invalid, or tensors are missing or have the wrong shape
    /// (the message lists them).</exception>
    public static CausalLanguageModel Load(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
        {
            throw new FileNotFoundException($"'{folder}' has no config.json; a Hugging Face checkpoint folder holds config.json and model.safetensors.",
                configPath);
        }

        string configText = File.ReadAllText(configPath);
        CausalLanguageModel model = CreateFromConfig(configText, configPath);
        model.SourceConfigJson = configText;
        try
        {
            using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder);
            // A compressed-tensors checkpoint: its quantized layers become QuantizedLinear modules before the rest loads.
            if (System.Text.Json.Nodes.JsonNode.Parse(configText, documentOptions: new System.Text.Json.JsonDocumentOptions { AllowDuplicateProperties = false }) is System.Text.Json.Nodes.JsonObject config &&
                config["quantization_config"] is System.Text.Json.Nodes.JsonObject quantization)
            {
                CompressedModels.ReplaceQuantizedLayers(model, quantization, checkpoint);
            }

            LoadWeights(model, checkpoint);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Creates a model with fresh weights from the text of a config.json.</summary>
    /// <exception cref="NotSupportedException">The architecture is not supported.</exception>
    /// <exception cref="InvalidDataException">The config is invalid.</exception>
    public static CausalLanguageModel CreateFromConfig(string configJson, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(configJson);
        return ParseConfig(configJson, source) switch
        {
            LlamaConfig llama => new LlamaForCausalLM(llama),
            Gpt2Config gpt2 => new Gpt2LMHeadModel(gpt2),
            var other => throw new InvalidOperationException($"ParseConfig returned a {other.GetType()}."),
        };
    }

    /// <summary>Reads the architecture and its config record (<see cref="LlamaConfig"/> or <see cref="Gpt2Config"/>)
    /// from the text of a config.json, without creating a model.</summary>
    /// <exception cref="NotSupportedException">The architecture is not supported.</exception>
    /// <exception cref="InvalidDataException">The text is not a JSON object, or the config is invalid.</exception>
    internal static object ParseConfig(string configJson, string source)
    {
        using JsonDocument document = ParseJson(configJson, source);
        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{source}: the config is a JSON {root.ValueKind}, not an object.");
        }

        string? architecture = null;
        if (root.TryGetProperty("architectures", out JsonElement list) && list.ValueKind == JsonValueKind.Array && list.GetArrayLength() > 0)
        {
            architecture = list[0].ValueKind == JsonValueKind.String
                ? list[0].GetString()
                : throw new InvalidDataException($"{source}: 'architectures' starts with {list[0]}, not a class name.");
        }

        return architecture switch
        {
            "LlamaForCausalLM" => LlamaConfig.Parse(root, source),
            "GPT2LMHeadModel" => Gpt2Config.Parse(root, source),
            null => throw new InvalidDataException($"{source}: no 'architectures' entry; expected one of {string.Join(", ", SupportedArchitectures)}."),
            _ => throw new NotSupportedException(
                $"{source}: architecture '{architecture}' is not supported; supported: {string.Join(", ", SupportedArchitectures)}."),
        };
    }

    /// <summary>Copies every parameter of <paramref name="model"/> from the checkpoint, checking names and shapes.</summary>
    /// <exception cref="InvalidDataException">Tensors are missing (all listed) or a shape differs.</exception>
    public static void LoadWeights(CausalLanguageModel model, SafetensorsCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(checkpoint);
        var missing = new List<string>();
        using var noGrad = torch.no_grad();
        foreach ((string name, global::TorchSharp.Modules.Parameter parameter) in model.named_parameters())
        {
            (string Name, bool Transposed)[] candidates = model.CheckpointNames(name).ToArray();
            int found = Array.FindIndex(candidates, c => checkpoint.Contains(c.Name));
            if (found < 0)
            {
                missing.Add(candidates[0].Name);
                continue;
            }

            (string stored, bool transposed) = candidates[found];
            SafetensorsTensorInfo info = checkpoint.GetInfo(stored);
            long[] shape = info.Shape.ToArray();
            if (transposed && shape.Length == 2)
            {
                shape = [shape[1], shape[0]];
            }

            if (!shape.SequenceEqual(parameter.shape))
            {
                throw new InvalidDataException(
                    $"{checkpoint.Path}: '{stored}' has shape [{string.Join(", ", info.Shape)}]{(transposed ? " (stored [in, out])" : "")}, " +
                    $"but {model.Architecture}'s '{name}' needs [{string.Join(", ", parameter.shape)}].");
            }

            if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.BF16 or SafetensorsDType.F16 or SafetensorsDType.F64))
            {
                throw new InvalidDataException($"{checkpoint.Path}: '{stored}' is {info.DType}; weights must be a floating type.");
            }

            model.SourceDTypes[name] = info.DType;
            DenseTensor values = checkpoint.ReadDense(stored);
            using Tensor source = values.ToTorchTensor();
            using Tensor view = transposed ? source.t() : source.alias();        // disposed here, not by the finalizer
            using Tensor oriented = view.contiguous();
            parameter.copy_(oriented);
        }

        if (missing.Count > 0)
        {
            throw new InvalidDataException(
                $"{checkpoint.Path}: {missing.Count} tensor(s) that {model.Architecture} needs are missing: {string.Join(", ", missing.Take(25))}" +
                (missing.Count > 25 ? $", … ({missing.Count - 25} more)" : "") + ".");
        }
    }

    private static JsonDocument ParseJson(string text, string source)
    {
        try
        {
            // A key given twice is refused: Python would silently keep the last one, and JsonNode would throw on access.
            return JsonDocument.Parse(text, new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON ({e.Message}).", e);
        }
    }
}
