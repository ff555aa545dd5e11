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

namespace Compression.Quantization.Checkpoints;

/// <summary>
/// Collects a compressed checkpoint (dense tensors as they are, quantized modules in the compressed-tensors layout)
/// and writes it as a Hugging Face folder: <c>model.safetensors</c> and <c>config.json</c> with its
/// <c>quantization_config</c>.
/// </summary>
/// <remarks>
/// The output depends only on what was added, never on the order: tensors are written sorted by name and the
/// metadata by key, so the model path (<c>CompressedModels.Save</c>) and the streaming path
/// (<see cref="CheckpointQuantizer"/>) produce the same bytes for the same weights. Both files are written completely
/// to hidden temporary files and then renamed into place back to back, the weights first, so a folder never pairs a new
/// config with old weights and no file under a final name is ever partial.
/// </remarks>
public sealed class CompressedCheckpointWriter
{
    private readonly SortedDictionary<string, Action<SafetensorsWriter>> _tensors = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, string> _metadata = new(StringComparer.Ordinal) { ["format"] = "pt" };
    private readonly List<(string Module, string Format, JsonObject Arguments, JsonObject? Activations)> _modules = [];

    /// <summary>Adds a dense tensor with its bytes (little-endian, <paramref name="dtype"/>).</summary>
    /// <exception cref="ArgumentException">The name is already used.</exception>
    public void AddDense(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<byte> data) =>
        Register(name, writer => writer.Add(name, dtype, shape, data));

    /// <summary>Adds a dense float tensor, stored as <paramref name="storeAs"/> (F32, F16 or BF16; rounded to nearest even).</summary>
    /// <exception cref="ArgumentException">The name is already used.</exception>
    public void AddDense(string name, Compression.Tensors.DenseTensor tensor, SafetensorsDType storeAs) =>
        Register(name, writer => writer.Add(name, tensor, storeAs));

    /// <summary>Adds a dense tensor whose bytes are produced when the file is written (streaming copies).</summary>
    /// <exception cref="ArgumentException">The name is already used.</exception>
    public void AddDense(string name, SafetensorsDType dtype, long[] shape, Action<Stream> writeData) =>
        Register(name, writer => writer.AddDeferred(name, dtype, shape, writeData));

    /// <summary>Adds a quantized module's weight (<c>{module}.weight_packed</c>, …) in the compressed-tensors layout.</summary>
    /// <param name="module">The module's name.</param>
    /// <param name="weight">Its quantized weight.</param>
    /// <param name="inputActivations">Its declared input-activation quantization (the group's <c>input_activations</c>),
    /// or null for weight-only.</param>
    /// <exception cref="NotSupportedException">The weight has no compressed-tensors layout.</exception>
    /// <exception cref="ArgumentException">A name is already used.</exception>
    public void AddQuantized(string module, CompressedTensor weight, ActivationQuantization? inputActivations = null)
    {
        EncodedModule encoded = CompressedTensorsCodec.Encode(module, weight);
        foreach (EncodedTensor t in encoded.Tensors)
        {
            Register(t.Name, writer => writer.Add(t.Name, t.DType, t.Shape, t.Data));
        }

        foreach ((string key, string value) in encoded.Metadata)
        {
            _metadata[key] = value;
        }

        _modules.Add((module, CompressedTensorsCodec.FormatOf(weight), CompressedTensorsCodec.WeightArguments(weight), Activations(inputActivations)));
    }

    /// <summary>
    /// Adds a quantized module already encoded (by <see cref="CompressedTensorsCodec.Encode"/>), its tensors' bytes
    /// produced when the file is written: the streaming path copies them from its journal.
    /// </summary>
    internal void AddEncoded(string module, string format, JsonObject arguments, ActivationQuantization? inputActivations,
        IEnumerable<(string Name, SafetensorsDType DType, long[] Shape, Action<Stream> Write)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        foreach ((string name, SafetensorsDType dtype, long[] shape, Action<Stream> write) in tensors)
        {
            AddDense(name, dtype, shape, write);
        }

        foreach ((string key, string value) in metadata)
        {
            _metadata[key] = value;
        }

        _modules.Add((module, format, arguments, Activations(inputActivations)));
    }

    private static JsonObject? Activations(ActivationQuantization? inputActivations) =>
        inputActivations is null ? null : CompressedTensorsCodec.ActivationArguments(inputActivations);

    /// <summary>The modules added quantized, in the order added.</summary>
    public IReadOnlyList<string> QuantizedModules => _modules.Select(m => m.Module).ToArray();

    /// <summary>
    /// Writes <c>model.safetensors</c> and <c>config.json</c> (<paramref name="config"/> with its
    /// <c>quantization_config</c> set) into <paramref name="folder"/>.
    /// </summary>
    /// <param name="folder">The output folder (created if needed).</param>
    /// <param name="config">The model's config.json object (not modified).</param>
    /// <param name="ignore">The patterns recorded as the config's <c>ignore</c> list.</param>
    public void Save(string folder, JsonObject config, IEnumerable<string> ignore)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(ignore);
        Directory.CreateDirectory(folder);
        var writer = new SafetensorsWriter();
        foreach (Action<SafetensorsWriter> add in _tensors.Values)
        {
            add(writer);
        }

        foreach ((string key, string value) in _metadata)
        {
            writer.SetMetadata(key, value);
        }

        var output = (JsonObject)config.DeepClone();
        output["quantization_config"] = QuantizationConfig(ignore);
        string json = output.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

        // Both files complete on disk under hidden names first, then two renames back to back: a kill leaves the old
        // pair, the new pair, or (in the microseconds between the renames) new weights beside the old config.
        using PreparedAtomicFile weights = AtomicFile.Prepare(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName), writer.WriteTo);
        using PreparedAtomicFile configFile = AtomicFile.Prepare(Path.Combine(folder, "config.json"), stream => stream.Write(Encoding.UTF8.GetBytes(json)));
        weights.Commit();
        configFile.Commit();
    }

    private JsonObject QuantizationConfig(IEnumerable<string> ignore)
    {
        // Modules sorted by name, so the groups do not depend on the order modules were added in.
        var groups = new List<(string Format, JsonObject Arguments, JsonObject? Activations, List<string> Targets)>();
        foreach ((string module, string format, JsonObject arguments, JsonObject? activations) in _modules.OrderBy(m => m.Module, StringComparer.Ordinal))
        {
            string key = arguments.ToJsonString(), activationKey = activations?.ToJsonString() ?? "null";
            int index = groups.FindIndex(g => g.Format == format && g.Arguments.ToJsonString() == key && (g.Activations?.ToJsonString() ?? "null") == activationKey);
            if (index < 0)
            {
                groups.Add((format, arguments, activations, []));
                index = groups.Count - 1;
            }

            groups[index].Targets.Add(module);
        }

        var configGroups = new JsonObject();
        for (int i = 0; i < groups.Count; i++)
        {
            configGroups[$"group_{i}"] = new JsonObject
            {
                ["targets"] = new JsonArray(groups[i].Targets.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
                ["weights"] = groups[i].Arguments.DeepClone(),
                ["input_activations"] = groups[i].Activations?.DeepClone(),
                ["output_activations"] = null,
                ["format"] = groups[i].Format,
            };
        }

        string[] formats = groups.Select(g => g.Format).Distinct().ToArray();
        // The keys compressed-tensors' ModelCompressor writes, except "version" (the compressed-tensors package version
        // that wrote the file, which this library is not); no KV-cache scheme.
        return new JsonObject
        {
            ["quant_method"] = "compressed-tensors",
            ["format"] = formats.Length == 1 ? formats[0] : "mixed-precision",
            ["quantization_status"] = "compressed",
            ["config_groups"] = configGroups,
            ["ignore"] = new JsonArray(ignore.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray()),
            ["kv_cache_scheme"] = null,
            ["global_compression_ratio"] = null,
            ["sparsity_config"] = new JsonObject(),
            ["transform_config"] = new JsonObject(),
        };
    }

    private void Register(string name, Action<SafetensorsWriter> add)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!_tensors.TryAdd(name, add))
        {
            throw new ArgumentException($"The tensor '{name}' was added twice.", nameof(name));
        }
    }
}
