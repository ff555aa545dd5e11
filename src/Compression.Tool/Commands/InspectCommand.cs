// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Compression.Safetensors;
using Compression.Tool.Infrastructure;

namespace Compression.Tool.Commands;

/// <summary>
/// <c>compress inspect</c>: the tensors of a safetensors checkpoint (file, folder or sharded index) with dtypes, shapes
/// and sizes, the parameter count, the architecture from config.json, and the storage format: plain floating point,
/// or compressed-tensors (from config.json's <c>quantization_config</c> and from the tensor suffixes).
/// </summary>
/// <remarks>Reads headers and, for packed modules, the tiny <c>weight_shape</c> tensors only; never libtorch.</remarks>
internal static class InspectCommand
{
    /// <summary>Suffixes of the compressed-tensors layout; tensors ending in them are not weights of their own.</summary>
    private static readonly string[] AuxiliarySuffixes =
        ["weight_scale", "weight_zero_point", "weight_g_idx", "weight_shape", "weight_global_scale", "input_scale", "input_global_scale"];

    /// <summary>The inspect command's arguments.</summary>
    /// <param name="Checkpoint">A folder, a .safetensors file or a sharded index.</param>
    internal sealed record Settings(string Checkpoint);

    /// <summary>Runs the command.</summary>
    public static InspectResult Run(Settings settings, ToolContext context)
    {
        CheckpointLocation location = CheckpointLocation.Resolve(settings.Checkpoint);
        using SafetensorsCheckpoint checkpoint = location.Open();
        context.CancellationToken.ThrowIfCancellationRequested();
        JsonObject? config = ReadConfig(location);

        var names = new HashSet<string>(checkpoint.Tensors.Select(t => t.Name), StringComparer.Ordinal);
        var tensors = new List<TensorEntry>();
        long parameters = 0;
        foreach (SafetensorsTensorInfo info in checkpoint.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            tensors.Add(new TensorEntry(info.Name, info.DType.ToHeaderName(), [.. info.Shape], info.ElementCount, info.ByteLength));
            parameters += ParametersOf(checkpoint, info, names);
        }

        string[] suffixes = checkpoint.Tensors.Select(t => t.Name[(t.Name.LastIndexOf('.') + 1)..])
            .Where(s => s == "weight_packed" || AuxiliarySuffixes.Contains(s)).Distinct().Order(StringComparer.Ordinal).ToArray();
        QuantizationInfo? quantization = config?["quantization_config"] is JsonObject q ? Describe(q) : null;
        string[] floatTypes = checkpoint.Tensors.Select(t => t.DType)
            .Where(d => d is SafetensorsDType.F32 or SafetensorsDType.BF16 or SafetensorsDType.F16 or SafetensorsDType.F64)
            .Distinct().Select(d => d.ToHeaderName()).Order(StringComparer.Ordinal).ToArray();
        string format = quantization is not null
            ? $"compressed-tensors ({quantization.Format ?? "unknown format"})"
            : suffixes.Length > 0
                ? $"compressed-tensors tensors ({string.Join(", ", suffixes)}) without a quantization_config"
                : $"float ({string.Join(", ", floatTypes)})";

        return new InspectResult(
            location.Path,
            format,
            config?["architectures"] is JsonArray { Count: > 0 } architectures ? architectures[0]?.ToString() : null,
            config?["model_type"]?.ToString(),
            quantization,
            suffixes,
            checkpoint.Files.Count,
            tensors.Count,
            parameters,
            tensors.Sum(t => t.Bytes),
            tensors.GroupBy(t => t.Dtype).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()),
            tensors);
    }

    /// <summary>How many model parameters a stored tensor holds: its elements for a plain tensor, the logical
    /// [out, in] of a packed weight, nothing for scales, zero points and other auxiliary tensors.</summary>
    private static long ParametersOf(SafetensorsCheckpoint checkpoint, SafetensorsTensorInfo info, HashSet<string> names)
    {
        string suffix = info.Name[(info.Name.LastIndexOf('.') + 1)..];
        if (AuxiliarySuffixes.Contains(suffix))
        {
            return 0;
        }

        if (suffix != "weight_packed")
        {
            return info.ElementCount;
        }

        string shapeName = info.Name[..^"packed".Length] + "shape";
        if (names.Contains(shapeName))
        {
            SafetensorsTensorInfo shapeInfo = checkpoint.GetInfo(shapeName);
            ReadOnlySpan<byte> bytes = checkpoint.GetBytes(shapeName);
            long product = 1;
            for (int i = 0; i < shapeInfo.ElementCount; i++)
            {
                product *= shapeInfo.DType == SafetensorsDType.I32
                    ? BinaryPrimitives.ReadInt32LittleEndian(bytes[(4 * i)..])
                    : BinaryPrimitives.ReadInt64LittleEndian(bytes[(8 * i)..]);
            }

            return product;
        }

        // FP4 layouts store two E2M1 codes per byte and no weight_shape.
        return info.DType == SafetensorsDType.U8 ? 2 * info.ElementCount : info.ElementCount;
    }

    private static JsonObject? ReadConfig(CheckpointLocation location)
    {
        if (location.ConfigPath is not string path)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw ToolException.Input($"'{path}' is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw ToolException.Input($"cannot read '{path}': {e.Message}", e);
        }
    }

    private static QuantizationInfo Describe(JsonObject q)
    {
        var groups = new List<QuantizationGroup>();
        if (q["config_groups"] is JsonObject configGroups)
        {
            foreach ((string name, JsonNode? node) in configGroups)
            {
                if (node is not JsonObject group)
                {
                    continue;
                }

                JsonObject? weights = group["weights"] as JsonObject;
                int? bits = Int(weights?["num_bits"]);
                string? type = weights?["type"]?.ToString();
                string? groupFormat = group["format"]?.ToString() ?? q["format"]?.ToString();
                bool activations = group["input_activations"] is JsonObject;
                groups.Add(new QuantizationGroup(
                    name,
                    groupFormat,
                    IsFp8Dynamic(type, bits, group["input_activations"] as JsonObject) ? "FP8_DYNAMIC" : SchemeName(groupFormat, type, bits, activations),
                    bits,
                    type,
                    weights?["symmetric"] is JsonValue s && s.TryGetValue(out bool symmetric) ? symmetric : null,
                    weights?["strategy"]?.ToString(),
                    Int(weights?["group_size"]),
                    weights?["actorder"]?.ToString(),
                    group["targets"] is JsonArray targets ? targets.Count : 0,
                    activations));
            }
        }

        string[] ignore = q["ignore"] is JsonArray list ? list.Select(i => i?.ToString() ?? "").ToArray() : [];
        return new QuantizationInfo(q["quant_method"]?.ToString(), q["format"]?.ToString(), q["quantization_status"]?.ToString(), groups, ignore);
    }

    private static string SchemeName(string? format, string? type, int? bits, bool activations)
    {
        string a = activations ? "A(quantized)" : "A16";
        return format switch
        {
            "nvfp4-pack-quantized" => "NVFP4" + a,
            "mxfp4-pack-quantized" => "MXFP4" + a,
            _ when type == "float" => $"FP{bits}" + a,
            _ when bits is int b => $"W{b}" + a,
            _ => "unknown",
        };
    }

    /// <summary>compressed-tensors' FP8_DYNAMIC: FP8 weights, 8-bit float activations per token, dynamic.</summary>
    private static bool IsFp8Dynamic(string? type, int? bits, JsonObject? activations) =>
        type == "float" && bits == 8 && activations is not null && activations["type"]?.ToString() == "float" &&
        Int(activations["num_bits"]) == 8 && activations["strategy"]?.ToString() == "token" &&
        activations["dynamic"] is JsonValue d && d.TryGetValue(out bool dynamic) && dynamic;

    private static int? Int(JsonNode? node) => node is JsonValue v && v.TryGetValue(out int i) ? i : null;
}

/// <summary>One stored tensor.</summary>
internal sealed record TensorEntry(string Name, string Dtype, long[] Shape, long Elements, long Bytes);

/// <summary>One config group of a compressed-tensors <c>quantization_config</c>.</summary>
internal sealed record QuantizationGroup(string Name, string? Format, string Scheme, int? NumBits, string? Type, bool? Symmetric,
    string? Strategy, int? GroupSize, string? ActOrder, int Targets, bool InputActivations);

/// <summary>A config.json's <c>quantization_config</c>.</summary>
internal sealed record QuantizationInfo(string? QuantMethod, string? Format, string? Status, IReadOnlyList<QuantizationGroup> Groups,
    IReadOnlyList<string> Ignore);

/// <summary>What <c>compress inspect</c> reports.</summary>
internal sealed record InspectResult(string Path, string Format, string? Architecture, string? ModelType, QuantizationInfo? Quantization,
    IReadOnlyList<string> CompressedTensorSuffixes, int Files, int TensorCount, long Parameters, long Bytes,
    IReadOnlyDictionary<string, int> Dtypes, IReadOnlyList<TensorEntry> Tensors) : ICommandResult
{
    /// <inheritdoc/>
    public void WriteText(TextWriter output)
    {
        CultureInfo c = CultureInfo.InvariantCulture;
        output.WriteLine($"checkpoint    {Path}");
        output.WriteLine($"architecture  {Architecture ?? "(no config.json)"}{(ModelType is null ? "" : $" ({ModelType})")}");
        output.WriteLine($"format        {Format}");
        if (Quantization is not null)
        {
            output.WriteLine($"quantization  {Quantization.QuantMethod}, status {Quantization.Status ?? "?"}, ignore [{string.Join(", ", Quantization.Ignore)}]");
            foreach (QuantizationGroup g in Quantization.Groups)
            {
                output.WriteLine(string.Create(c,
                    $"  {g.Name}: {g.Scheme}, {g.Format}, {g.NumBits}-bit {g.Type}, {(g.Symmetric == false ? "asymmetric" : "symmetric")}, {g.Strategy}{(g.GroupSize is int gs ? $" {gs}" : "")}, {g.Targets} modules{(g.InputActivations ? ", input activations quantized" : "")}"));
            }
        }

        output.WriteLine(string.Create(c, $"tensors       {TensorCount} in {Files} file(s), {Bytes:N0} bytes ({string.Join(", ", Dtypes.Select(d => $"{d.Key} {d.Value}"))})"));
        output.WriteLine(string.Create(c, $"parameters    {Parameters:N0}"));
        output.WriteLine();
        int width = Math.Max(4, Tensors.Max(t => t.Name.Length));
        output.WriteLine($"{"name".PadRight(width)}  {"dtype",-7}  {"shape",-16}  {"bytes",12}");
        foreach (TensorEntry t in Tensors)
        {
            output.WriteLine(string.Create(c, $"{t.Name.PadRight(width)}  {t.Dtype,-7}  {"[" + string.Join(", ", t.Shape) + "]",-16}  {t.Bytes,12:N0}"));
        }
    }
}
