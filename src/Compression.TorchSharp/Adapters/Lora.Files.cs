// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using Compression.Safetensors;
using Compression.TorchSharp;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression;

public static partial class Lora
{
    /// <summary>The adapter weights' file name, as PEFT's <c>save_pretrained</c> writes it.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>The adapter configuration's file name.</summary>
    public const string ConfigFileName = "adapter_config.json";

    private const string Prefix = "base_model.model.";

    /// <summary>
    /// Writes the adapters as PEFT does: <c>adapter_model.safetensors</c> with F32 tensors named
    /// <c>base_model.model.&lt;module&gt;.lora_A.weight</c> / <c>lora_B.weight</c> (DoRA adds <c>lora_magnitude_vector</c>;
    /// VeRA writes <c>vera_lambda_b</c>, <c>vera_lambda_d</c> and the shared <c>base_model.vera_A</c>/<c>vera_B</c>;
    /// AdaLoRA <c>lora_A</c>, <c>lora_B</c>, <c>lora_E</c>) and <c>adapter_config.json</c>, each file atomically.
    /// </summary>
    /// <remarks>DyLoRA has no PEFT type: it is saved as a plain LoRA at each layer's active rank (which must agree), a
    /// file PEFT loads as such.</remarks>
    /// <exception cref="InvalidOperationException">The model has no adapter, or DyLoRA layers disagree on their active rank.</exception>
    public static void Save(CausalLanguageModel model, string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var adapters = AdaptersOf(model);
        if (adapters.Count == 0)
        {
            throw new InvalidOperationException("The model has no adapter to save; Apply or Load one first.");
        }

        LoraOptions options = adapters[0].Adapter.Options;
        int? dyLoraRank = null;
        if (options.Method == AdapterMethod.DyLora)
        {
            int[] ranks = adapters.Select(a => ((DyLoraLinear)a.Adapter).ActiveRank).Distinct().ToArray();
            dyLoraRank = ranks.Length == 1 ? ranks[0] : throw new InvalidOperationException(
                $"DyLoRA layers use different active ranks ({string.Join(", ", ranks)}); set one ActiveRank on all before saving.");
        }

        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        using (torch.no_grad())
        {
            foreach ((string name, AdapterLinear adapter) in adapters)
            {
                foreach ((string suffix, Tensor tensor) in adapter.AdapterTensors())
                {
                    writer.Add($"{Prefix}{name}.{suffix}", tensor.contiguous().ToDenseTensor());
                }
            }

            if (adapters[0].Adapter is VeraLinear vera)
            {
                writer.Add("base_model.vera_A", vera.Projections.A.ToDenseTensor());
                writer.Add("base_model.vera_B", vera.Projections.B.ToDenseTensor());
            }
        }

        Directory.CreateDirectory(folder);
        JsonObject config = ConfigOf(options, adapters, dyLoraRank);
        // Both files complete on disk first, then two back-to-back renames: a killed save never pairs new weights with
        // an old config for longer than the gap between the renames.
        using PreparedAtomicFile weights = AtomicFile.Prepare(Path.Combine(folder, WeightsFileName), writer.WriteTo);
        using PreparedAtomicFile configFile = AtomicFile.Prepare(Path.Combine(folder, ConfigFileName), stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            config.WriteTo(json);
        });
        weights.Commit();
        configFile.Commit();
    }

    /// <summary>
    /// Adapts <paramref name="model"/> as a saved <c>adapter_config.json</c> says and loads the saved weights (PEFT's
    /// <c>PeftModel.from_pretrained</c>); the model must not have adapters yet.
    /// </summary>
    /// <returns>The report of the adaptation.</returns>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">adapter_config.json is not valid JSON.</exception>
    /// <exception cref="ArgumentException">The config names an unknown PEFT type or targets modules the model lacks, a
    /// tensor is missing, has the wrong shape or names no adapted module. The model's adapters are then removed again
    /// (<see cref="Unload"/>; a PiSSA configuration leaves its residual base weights).</exception>
    public static AdapterReport Load(CausalLanguageModel model, string folder)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string configPath = Path.Combine(folder, ConfigFileName), weightsPath = Path.Combine(folder, WeightsFileName);
        if (!File.Exists(configPath) || !File.Exists(weightsPath))
        {
            throw new FileNotFoundException($"'{folder}' must hold {ConfigFileName} and {WeightsFileName}.", File.Exists(configPath) ? weightsPath : configPath);
        }

        JsonObject config = ParseConfig(configPath) as JsonObject
            ?? throw new ArgumentException($"{configPath} is not a JSON object.", nameof(folder));
        LoraOptions options = OptionsOf(config, configPath);
        AdapterReport report = Apply(model, options);
        try
        {
            using SafetensorsFile file = SafetensorsFile.Open(weightsPath);
            var expected = new HashSet<string>(StringComparer.Ordinal);
            var adapters = AdaptersOf(model);
            using (torch.no_grad())
            {
                foreach ((string name, AdapterLinear adapter) in adapters)
                {
                    foreach ((string suffix, Tensor tensor) in adapter.AdapterTensors())
                    {
                        string key = $"{Prefix}{name}.{suffix}";
                        expected.Add(key);
                        CopyInto(file, key, tensor);
                    }
                }

                if (adapters[0].Adapter is VeraLinear vera)
                {
                    foreach ((string key, Tensor shared) in new[] { ("base_model.vera_A", vera.Projections.A), ("base_model.vera_B", vera.Projections.B) })
                    {
                        // PEFT writes the shared pair unless save_projection is false; the seed then rebuilds it.
                        if (file.Contains(key))
                        {
                            expected.Add(key);
                            CopyInto(file, key, shared);
                        }
                    }
                }

                if (config["rank_pattern"] is JsonObject pattern)
                {
                    ApplyRankPattern(adapters, pattern);
                }
            }

            if (file.Tensors.FirstOrDefault(t => !expected.Contains(t.Name)) is { } extra)
            {
                throw new ArgumentException($"'{extra.Name}' in {weightsPath} names no adapted module of this model.", nameof(folder));
            }
        }
        catch
        {
            Unload(model);
            throw;
        }

        return report;
    }

    private static void CopyInto(SafetensorsFile file, string key, Tensor destination)
    {
        if (!file.TryGetInfo(key, out SafetensorsTensorInfo? info))
        {
            throw new ArgumentException($"{file.FilePath} has no tensor '{key}'.", "folder");
        }

        if (!info.Shape.SequenceEqual(destination.shape))
        {
            throw new ArgumentException(
                $"'{key}' has shape [{string.Join(", ", info.Shape)}] in {file.FilePath}; the adapter needs [{string.Join(", ", destination.shape)}] (rank or target mismatch with {ConfigFileName}?).", "folder");
        }

        using Tensor values = file.ReadDense(key).ToTorchTensor();
        destination.copy_(values.reshape(destination.shape));
    }

    private static void ApplyRankPattern(IReadOnlyList<(string Name, AdapterLinear Adapter)> adapters, JsonObject pattern)
    {
        foreach ((string name, AdapterLinear adapter) in adapters)
        {
            if (adapter is AdaLoraLinear ada && pattern[name] is JsonArray kept && kept.Count == ada.Rank)
            {
                ada.ApplyMask(kept.Select(k => k!.GetValue<bool>()).ToArray());
            }
        }
    }

    private static JsonObject ConfigOf(LoraOptions options, IReadOnlyList<(string Name, AdapterLinear Adapter)> adapters, int? dyLoraRank)
    {
        JsonNode targets = options.TargetPattern is { } pattern ? JsonValue.Create(pattern) : new JsonArray(options.TargetModules.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray());
        var config = new JsonObject
        {
            ["base_model_name_or_path"] = null,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["target_modules"] = targets,
            ["task_type"] = "CAUSAL_LM",
        };
        switch (options.Method)
        {
            case AdapterMethod.Lora:
            case AdapterMethod.DyLora:
                config["peft_type"] = "LORA";
                config["r"] = dyLoraRank ?? options.Rank;
                config["lora_alpha"] = options.Alpha;
                config["lora_dropout"] = options.Dropout;
                config["use_rslora"] = options.UseRsLora;
                config["use_dora"] = options.UseDora;
                config["init_lora_weights"] = options.Initialization == LoraInitialization.Pissa ? JsonValue.Create("pissa") : JsonValue.Create(true);
                break;
            case AdapterMethod.Vera:
                config["peft_type"] = "VERA";
                config["r"] = options.Rank;
                config["vera_dropout"] = options.Dropout;
                config["projection_prng_key"] = options.Seed;
                config["save_projection"] = true;
                config["d_initial"] = options.VeraInitialD;
                break;
            case AdapterMethod.AdaLora:
                AdaLoraOptions ada = options.AdaLora;
                config["peft_type"] = "ADALORA";
                config["r"] = options.Rank;
                config["init_r"] = options.Rank;
                config["target_r"] = ada.TargetRank;
                config["lora_alpha"] = options.Alpha;
                config["lora_dropout"] = options.Dropout;
                config["tinit"] = ada.InitialWarmup;
                config["tfinal"] = ada.FinalWarmup;
                config["deltaT"] = ada.MaskInterval;
                config["beta1"] = ada.Beta1;
                config["beta2"] = ada.Beta2;
                config["orth_reg_weight"] = ada.OrthogonalityWeight;
                config["total_step"] = ada.TotalSteps;
                var rankPattern = new JsonObject();
                foreach ((string name, AdapterLinear adapter) in adapters)
                {
                    rankPattern[name] = new JsonArray(((AdaLoraLinear)adapter).ActiveTriplets.Select(a => (JsonNode)JsonValue.Create(a)).ToArray());
                }

                config["rank_pattern"] = rankPattern;
                break;
        }

        return config;
    }

    private static LoraOptions OptionsOf(JsonObject config, string path)
    {
        string type = config["peft_type"]?.GetValue<string>() ?? throw new ArgumentException($"{path} has no peft_type.", "folder");
        T Get<T>(string key, T fallback) => config[key] is JsonValue value ? value.GetValue<T>() : fallback;
        LoraOptions options = new() { Seed = 0 };
        try
        {
            options = config["target_modules"] switch
            {
                JsonArray list => options with { TargetModules = list.Select(t => t!.GetValue<string>()).ToArray() },
                JsonValue pattern => options with { TargetPattern = pattern.GetValue<string>() },
                _ => throw new ArgumentException($"{path} has no target_modules.", "folder"),
            };
            return type switch
            {
                "LORA" => options with
                {
                    Rank = Get("r", 8), Alpha = Get("lora_alpha", 8.0), Dropout = Get("lora_dropout", 0.0),
                    UseRsLora = Get("use_rslora", false), UseDora = Get("use_dora", false),
                    Initialization = config["init_lora_weights"] is JsonValue init && init.GetValueKind() == JsonValueKind.String
                        && init.GetValue<string>().StartsWith("pissa", StringComparison.Ordinal) ? LoraInitialization.Pissa : LoraInitialization.Kaiming,
                },
                "VERA" => options with
                {
                    Method = AdapterMethod.Vera, Rank = Get("r", 256), Dropout = Get("vera_dropout", 0.0),
                    Seed = Get("projection_prng_key", 0), VeraInitialD = Get("d_initial", 0.1),
                },
                "ADALORA" => options with
                {
                    Method = AdapterMethod.AdaLora, Rank = Get("init_r", 12), Alpha = Get("lora_alpha", 8.0), Dropout = Get("lora_dropout", 0.0),
                    AdaLora = new AdaLoraOptions
                    {
                        TargetRank = Get("target_r", 8), InitialWarmup = Get("tinit", 0), FinalWarmup = Get("tfinal", 0),
                        MaskInterval = Get("deltaT", 1), Beta1 = Get("beta1", 0.85), Beta2 = Get("beta2", 0.85),
                        OrthogonalityWeight = Get("orth_reg_weight", 0.5), TotalSteps = Get("total_step", 1000),
                    },
                },
                _ => throw new ArgumentException($"{path} has peft_type '{type}'; LORA, VERA and ADALORA are supported.", "folder"),
            };
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new ArgumentException($"{path} holds a value of the wrong type: {e.Message}", "folder", e);
        }
    }

    private static JsonNode? ParseConfig(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }
}
