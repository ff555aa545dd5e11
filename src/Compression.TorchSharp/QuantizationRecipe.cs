// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using Compression.Quantization;
using Compression.Quantization.Rotation;

namespace Compression;

/// <summary>One stage of a <see cref="QuantizationRecipe"/>: a name (for reports and errors) and what
/// <see cref="Quantizer"/> does in it.</summary>
public sealed record QuantizationStage
{
    /// <summary>Creates the stage.</summary>
    /// <param name="name">A non-empty name, unique within its recipe.</param>
    /// <param name="options">What the stage quantizes and how.</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty, or an argument is null.</exception>
    public QuantizationStage(string name, QuantizerOptions options)
    {
        Name = name;
        Options = options;
    }

    /// <summary>The stage's name (<c>mlp-int4-gptq</c>).</summary>
    public string Name
    {
        get;
        init => field = string.IsNullOrWhiteSpace(value)
            ? throw new ArgumentException("A stage needs a non-empty name.", nameof(Name))
            : value;
    }

    /// <summary>The stage's options: format, method, targets, ignores and overrides.</summary>
    public QuantizerOptions Options
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Options));
    }
}

/// <summary>
/// Quantization in stages, as an llm-compressor recipe lists modifiers: each stage quantizes its targets with its own
/// <see cref="QuantizerOptions"/>, in order, and a layer quantized by an earlier stage is left alone by later ones
/// (see <see cref="Quantizer"/>).
/// Recipes are written in C# or read from JSON.
/// </summary>
/// <remarks>
/// <para>The JSON form (keys in snake_case, as llm-compressor's; every key but <c>stages</c> optional):</para>
/// <code>
/// {
///   "stages": [
///     { "name": "mlp-int4-gptq", "scheme": "W4A16", "method": "gptq",
///       "targets": ["re:.*mlp\\..*"], "ignore": ["lm_head"],
///       "weights": { "format": "int4", "symmetric": true, "strategy": "group", "group_size": 128 },
///       "gptq": { "block_size": 128, "dampening_frac": 0.01, "actorder": true, "static_groups": false },
///       "overrides": [ { "targets": ["re:.*down_proj"], "weights": { "format": "int8", "strategy": "channel" } } ] },
///     { "name": "attention-fp8", "scheme": "FP8", "targets": ["re:.*self_attn\\..*"] }
///   ]
/// }
/// </code>
/// <list type="bullet">
/// <item><c>name</c>: a unique name; default <c>stage-</c><i>index</i>.</item>
/// <item><c>scheme</c>: a preset (<see cref="QuantizerOptions.Preset"/>) that <c>weights</c> refines. Without a
/// scheme, <c>weights.format</c> is required.</item>
/// <item><c>method</c>: <c>rtn</c> (default) or <c>gptq</c> (needs calibration sequences).</item>
/// <item><c>targets</c>, <c>ignore</c>: patterns as in <see cref="QuantizerOptions"/> (<c>Linear</c>, globs,
/// <c>re:</c> regular expressions); defaults <c>["Linear"]</c> and <c>["lm_head"]</c>.</item>
/// <item><c>weights</c>: <c>format</c> (a <see cref="NumberFormat.Name"/>: <c>int2</c>–<c>int8</c>, <c>fp8-e4m3</c>,
/// <c>fp8-e5m2</c>, <c>fp6-e2m3</c>, <c>fp6-e3m2</c>, <c>fp4-e2m1</c>, <c>mxfp8-e4m3</c>, <c>mxfp8-e5m2</c>,
/// <c>mxfp6-e2m3</c>, <c>mxfp6-e3m2</c>, <c>mxfp4</c>, <c>mxint8</c>, <c>nvfp4</c>, <c>nf4</c>, <c>ternary-absmean</c>,
/// <c>ternary-twn</c>; any case, <c>_</c> for <c>-</c>), <c>symmetric</c> (bool), <c>strategy</c> (<c>tensor</c>,
/// <c>channel</c>, <c>group</c> with <c>group_size</c>, <c>block</c> with <c>block_structure</c> [rows, columns]),
/// <c>group_size</c> alone (implies <c>group</c>), <c>symmetric_range</c> (<c>restricted</c> or <c>full</c>),
/// <c>scale_dtype</c> (<c>float32</c>, <c>float16</c>, <c>bfloat16</c>), <c>saturate</c> (bool), <c>clipping</c>
/// (<c>{ "grid": 100, "max_shrink": 0.8, "norm": 2.4 }</c>, each optional, or null). Each key replaces that field of
/// the scheme's weights. A <c>format</c> without <c>strategy</c> keeps the scheme's strategy, except that a format
/// with fixed blocks (MX, NVFP4, NF4) takes its own, and a format other than INTn is symmetric.</item>
/// <item><c>gptq</c> (only with <c>"method": "gptq"</c>): <c>block_size</c>, <c>dampening_frac</c>, <c>actorder</c>,
/// <c>static_groups</c>, <c>max_dampening_attempts</c>, <c>dampening_growth</c>, and <c>rotation</c>
/// (<c>{ "block_size": 32, "sign_seed": 7 }</c>, MR-GPTQ's block Hadamard rotation; <c>sign_seed</c> optional);
/// the fields of <see cref="GptqOptions"/>.</item>
/// <item><c>overrides</c>: a list of <c>{ "targets": [...], "weights": {...} }</c>; <c>weights</c> refines the stage's
/// weights, and the first override whose pattern matches a layer gives its format.</item>
/// </list>
/// <para>Unknown keys, values of the wrong type and unknown schemes, formats or strategies are refused with a message
/// that starts with the JSON path (<c>stages[1].weights.strategy: 'grp' is not tensor, channel, group or block</c>).
/// Combinations a format cannot take (asymmetric FP8, MXFP4 per channel) and GPTQ with per-tensor scales are refused
/// too, before any model is touched.</para>
/// </remarks>
/// <example>
/// <code>
/// QuantizationRecipe recipe = QuantizationRecipe.Load("recipe.json");
/// QuantizationReport report = Quantizer.Apply(model, recipe, calibration);
///
/// var inCode = new QuantizationRecipe([
///     new QuantizationStage("mlp", QuantizerOptions.W4A16 with { Targets = ["*.mlp.*"] }),
///     new QuantizationStage("attention", QuantizerOptions.Fp8A16 with { Targets = ["*.self_attn.*"] }),
/// ]);
/// </code>
/// </example>
public sealed record QuantizationRecipe
{
    private static readonly string[] RecipeKeys = ["stages"];
    private static readonly string[] StageKeys = ["name", "scheme", "method", "targets", "ignore", "weights", "gptq", "overrides"];
    private static readonly string[] WeightKeys =
        ["format", "symmetric", "strategy", "group_size", "block_structure", "symmetric_range", "scale_dtype", "saturate", "clipping"];
    private static readonly string[] ClippingKeys = ["grid", "max_shrink", "norm"];
    private static readonly string[] GptqKeys =
        ["block_size", "dampening_frac", "actorder", "static_groups", "max_dampening_attempts", "dampening_growth", "rotation"];
    private static readonly string[] RotationKeys = ["block_size", "sign_seed"];
    private static readonly string[] OverrideKeys = ["targets", "weights"];

    /// <summary>Creates the recipe.</summary>
    /// <param name="stages">At least one stage, with unique names; run in order.</param>
    /// <exception cref="ArgumentException">No stage, a null stage or two stages with one name.</exception>
    public QuantizationRecipe(IReadOnlyList<QuantizationStage> stages)
    {
        Stages = stages;
    }

    /// <summary>The stages, in the order they run. At least one; names unique.</summary>
    public IReadOnlyList<QuantizationStage> Stages
    {
        get;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(Stages));
            if (value.Count == 0)
            {
                throw new ArgumentException("A recipe needs at least one stage.", nameof(Stages));
            }

            var names = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < value.Count; i++)
            {
                QuantizationStage stage = value[i] ?? throw new ArgumentException($"Stage {i} is null.", nameof(Stages));
                if (!names.Add(stage.Name))
                {
                    throw new ArgumentException($"Two stages are named '{stage.Name}'; stage names must be unique.", nameof(Stages));
                }
            }

            field = value.ToArray();
        }
    }

    /// <summary>Reads a recipe from its JSON form (see the remarks).</summary>
    /// <param name="json">The JSON text.</param>
    /// <exception cref="ArgumentException">The text is not JSON, or not a valid recipe; the message starts with the
    /// JSON path of the first problem.</exception>
    public static QuantizationRecipe FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            return Parse(json);
        }
        catch (InvalidDataException e)
        {
            throw new ArgumentException(e.Message, nameof(json), e);
        }
    }

    /// <summary>Reads a recipe from a JSON file (see the remarks).</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is null or empty.</exception>
    /// <exception cref="InvalidDataException">The file is not JSON, or not a valid recipe; the message names the file and
    /// the JSON path of the first problem.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static QuantizationRecipe Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string json = File.ReadAllText(path);
        try
        {
            return Parse(json);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>The recipe as JSON that <see cref="FromJson"/> reads back to the same options: every stage with its
    /// method, targets, ignores, complete weights (no scheme, except <c>FP8_DYNAMIC</c> for a stage with
    /// <see cref="QuantizerOptions.InputActivations"/>: the preset carries the activations, the weights replace its own),
    /// GPTQ settings when the method is GPTQ, and overrides.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        // Relaxed escaping keeps regular expressions readable ("+" stays "+"); JSON's own escapes still apply.
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("stages");
            foreach (QuantizationStage stage in Stages)
            {
                QuantizerOptions options = stage.Options;
                writer.WriteStartObject();
                writer.WriteString("name", stage.Name);
                if (options.InputActivations is not null)
                {
                    // The only activation quantization there is; recipes name it by its preset.
                    writer.WriteString("scheme", "FP8_DYNAMIC");
                }

                writer.WriteString("method", options.Method == QuantizationMethod.Gptq ? "gptq" : "rtn");
                WriteStrings(writer, "targets", options.Targets);
                WriteStrings(writer, "ignore", options.Ignore);
                writer.WritePropertyName("weights");
                WriteWeights(writer, options.Quantization);
                if (options.Method == QuantizationMethod.Gptq)
                {
                    writer.WritePropertyName("gptq");
                    WriteGptq(writer, options.Gptq);
                }

                if (options.Overrides.Count > 0)
                {
                    writer.WriteStartArray("overrides");
                    foreach ((string pattern, RtnOptions weights) in options.Overrides)
                    {
                        writer.WriteStartObject();
                        WriteStrings(writer, "targets", [pattern]);
                        writer.WritePropertyName("weights");
                        WriteWeights(writer, weights);
                        writer.WriteEndObject();
                    }

                    writer.WriteEndArray();
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteStrings(Utf8JsonWriter writer, string key, IEnumerable<string> values)
    {
        writer.WriteStartArray(key);
        foreach (string value in values)
        {
            writer.WriteStringValue(value);
        }

        writer.WriteEndArray();
    }

    private static void WriteWeights(Utf8JsonWriter writer, RtnOptions weights)
    {
        writer.WriteStartObject();
        writer.WriteString("format", weights.Format.Name);
        writer.WriteBoolean("symmetric", weights.Symmetric);
        switch (weights.Granularity)
        {
            case null:
                break;   // the format's own
            case PerTensorGranularity:
                writer.WriteString("strategy", "tensor");
                break;
            case PerChannelGranularity:
                writer.WriteString("strategy", "channel");
                break;
            case PerGroupGranularity group:
                writer.WriteString("strategy", "group");
                writer.WriteNumber("group_size", group.Size);
                break;
            case PerBlockGranularity block:
                writer.WriteString("strategy", "block");
                writer.WriteStartArray("block_structure");
                writer.WriteNumberValue(block.Rows);
                writer.WriteNumberValue(block.Columns);
                writer.WriteEndArray();
                break;
            default:
                throw new InvalidOperationException($"Granularity {weights.Granularity} has no JSON form.");
        }

        writer.WriteString("symmetric_range", weights.SymmetricRange == SymmetricRange.Full ? "full" : "restricted");
        writer.WriteString("scale_dtype", weights.ScaleStorage switch
        {
            ScaleEncoding.Float16 => "float16",
            ScaleEncoding.BFloat16 => "bfloat16",
            _ => "float32",
        });
        writer.WriteBoolean("saturate", weights.Saturate);
        if (weights.Clipping is { } clipping)
        {
            writer.WriteStartObject("clipping");
            writer.WriteNumber("grid", clipping.Grid);
            writer.WriteNumber("max_shrink", clipping.MaxShrink);
            writer.WriteNumber("norm", clipping.Norm);
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    private static void WriteGptq(Utf8JsonWriter writer, GptqOptions gptq)
    {
        writer.WriteStartObject();
        writer.WriteNumber("block_size", gptq.BlockSize);
        writer.WriteNumber("dampening_frac", gptq.DampeningPercent);
        writer.WriteBoolean("actorder", gptq.ActOrder);
        writer.WriteBoolean("static_groups", gptq.StaticGroups);
        writer.WriteNumber("max_dampening_attempts", gptq.MaxDampeningAttempts);
        writer.WriteNumber("dampening_growth", gptq.DampeningGrowth);
        if (gptq.Rotation is { } rotation)
        {
            writer.WriteStartObject("rotation");
            writer.WriteNumber("block_size", rotation.BlockSize);
            if (rotation.SignSeed is long seed)
            {
                writer.WriteNumber("sign_seed", seed);
            }

            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    private static QuantizationRecipe Parse(string json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The recipe is not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            Dictionary<string, JsonElement> root = Fields(document.RootElement, "", RecipeKeys);
            if (!root.TryGetValue("stages", out JsonElement stagesElement))
            {
                throw Error("", "'stages' is required (a list of stages)");
            }

            JsonElement[] items = Items(stagesElement, "stages");
            if (items.Length == 0)
            {
                throw Error("stages", "a recipe needs at least one stage");
            }

            var stages = new List<QuantizationStage>(items.Length);
            for (int i = 0; i < items.Length; i++)
            {
                QuantizationStage stage = ParseStage(items[i], $"stages[{i}]", i);
                int previous = stages.FindIndex(s => s.Name == stage.Name);
                if (previous >= 0)
                {
                    throw Error($"stages[{i}].name", $"'{stage.Name}' is already the name of stages[{previous}]");
                }

                stages.Add(stage);
            }

            return new QuantizationRecipe(stages);
        }
    }

    private static QuantizationStage ParseStage(JsonElement element, string path, int index)
    {
        Dictionary<string, JsonElement> fields = Fields(element, path, StageKeys);
        string name = OptionalString(fields, "name", path) ?? $"stage-{index}";
        if (string.IsNullOrWhiteSpace(name))
        {
            throw Error(Child(path, "name"), "must not be empty");
        }

        string? scheme = OptionalString(fields, "scheme", path);
        QuantizerOptions options = scheme is not null
            ? Guard(Child(path, "scheme"), () => QuantizerOptions.Preset(scheme))
            : new QuantizerOptions { Quantization = new RtnOptions() };
        if (scheme is null && !(fields.TryGetValue("weights", out JsonElement w) && (w.ValueKind != JsonValueKind.Object || w.TryGetProperty("format", out _))))
        {
            throw Error(path, "give a 'scheme' (a preset such as W4A16) or 'weights.format'");
        }

        string method = OptionalString(fields, "method", path) ?? "rtn";
        options = method switch
        {
            "rtn" => options with { Method = QuantizationMethod.RoundToNearest },
            "gptq" => options with { Method = QuantizationMethod.Gptq },
            _ => throw Error(Child(path, "method"), $"'{method}' is not rtn or gptq"),
        };

        if (fields.TryGetValue("targets", out JsonElement targets))
        {
            string at = Child(path, "targets");
            string[] patterns = Strings(targets, at);
            if (patterns.Length == 0)
            {
                throw Error(at, "must list at least one pattern");
            }

            options = Guard(at, () => options with { Targets = patterns });
        }

        if (fields.TryGetValue("ignore", out JsonElement ignore))
        {
            string at = Child(path, "ignore");
            string[] patterns = Strings(ignore, at);
            options = Guard(at, () => options with { Ignore = patterns });
        }

        if (fields.TryGetValue("weights", out JsonElement weights))
        {
            options = options with { Quantization = ParseWeights(weights, Child(path, "weights"), options.Quantization) };
        }

        if (fields.TryGetValue("gptq", out JsonElement gptq))
        {
            if (options.Method != QuantizationMethod.Gptq)
            {
                throw Error(Child(path, "gptq"), "GPTQ settings need \"method\": \"gptq\"");
            }

            options = options with { Gptq = ParseGptq(gptq, Child(path, "gptq"), options.Gptq) };
        }

        if (fields.TryGetValue("overrides", out JsonElement overrides))
        {
            var list = new List<KeyValuePair<string, RtnOptions>>();
            JsonElement[] items = Items(overrides, Child(path, "overrides"));
            for (int i = 0; i < items.Length; i++)
            {
                string at = $"{Child(path, "overrides")}[{i}]";
                Dictionary<string, JsonElement> entry = Fields(items[i], at, OverrideKeys);
                if (!entry.TryGetValue("targets", out JsonElement patterns) || !entry.TryGetValue("weights", out JsonElement format))
                {
                    throw Error(at, "an override needs 'targets' and 'weights'");
                }

                string[] keys = Strings(patterns, Child(at, "targets"));
                if (keys.Length == 0)
                {
                    throw Error(Child(at, "targets"), "must list at least one pattern");
                }

                for (int k = 0; k < keys.Length; k++)
                {
                    CheckPattern(keys[k], $"{Child(at, "targets")}[{k}]");
                }

                RtnOptions rtn = ParseWeights(format, Child(at, "weights"), options.Quantization);
                CheckGptq(options, rtn, Child(at, "weights"));
                list.AddRange(keys.Select(k => new KeyValuePair<string, RtnOptions>(k, rtn)));
            }

            options = options with { Overrides = list };
        }

        CheckGptq(options, options.Quantization, fields.ContainsKey("weights") ? Child(path, "weights") : path);
        return new QuantizationStage(name, options);
    }

    /// <summary>GPTQ refuses some formats and granularities whatever the weight's shape: say so at parse time.</summary>
    private static void CheckGptq(QuantizerOptions options, RtnOptions weights, string path)
    {
        if (options.Method == QuantizationMethod.Gptq)
        {
            Check(path, () => (options.Gptq with { Quantization = weights }).Validate());
        }
    }

    private static RtnOptions ParseWeights(JsonElement element, string path, RtnOptions start)
    {
        Dictionary<string, JsonElement> fields = Fields(element, path, WeightKeys);
        RtnOptions weights = start;
        if (OptionalString(fields, "format", path) is { } formatName)
        {
            NumberFormat format = ParseFormat(formatName, Child(path, "format"));
            weights = weights with
            {
                Format = format,
                // A format with fixed blocks accepts nothing else; a format other than INTn is symmetric by definition.
                Granularity = format.DefaultGranularity is PerChannelGranularity ? weights.Granularity : null,
                Symmetric = weights.Symmetric || !format.Name.StartsWith("int", StringComparison.Ordinal),
            };
        }

        int? groupSize = OptionalInt(fields, "group_size", path);
        if (groupSize is <= 0)
        {
            throw Error(Child(path, "group_size"), $"{groupSize} is not a positive group size");
        }

        int[]? blockStructure = null;
        if (fields.TryGetValue("block_structure", out JsonElement blockElement))
        {
            string at = Child(path, "block_structure");
            JsonElement[] sides = Items(blockElement, at);
            blockStructure = sides.Select((side, i) => Int(side, $"{at}[{i}]")).ToArray();
            if (blockStructure.Length != 2 || blockStructure.Any(side => side <= 0))
            {
                throw Error(at, "expected [rows, columns], two positive integers");
            }
        }

        string? strategy = OptionalString(fields, "strategy", path);
        if (groupSize is not null && strategy is not (null or "group"))
        {
            throw Error(Child(path, "group_size"), $"a group size needs strategy 'group', not '{strategy}'");
        }

        if (blockStructure is not null && strategy is not (null or "block"))
        {
            throw Error(Child(path, "block_structure"), $"a block structure needs strategy 'block', not '{strategy}'");
        }

        if (groupSize is not null && blockStructure is not null)
        {
            throw Error(path, "give group_size or block_structure, not both");
        }

        string strategyPath = Child(path, "strategy");
        Granularity? granularity = (strategy ?? (groupSize is not null ? "group" : blockStructure is not null ? "block" : null)) switch
        {
            null => weights.Granularity,
            "tensor" => Granularity.PerTensor,
            "channel" => Granularity.PerChannel,
            "group" => groupSize is int size ? Granularity.PerGroup(size)
                : weights.Granularity is PerGroupGranularity kept ? kept
                : throw Error(strategyPath, "strategy 'group' needs a group_size"),
            "block" => blockStructure is { } b ? Granularity.PerBlock(b[0], b[1])
                : weights.Granularity is PerBlockGranularity keptBlock ? keptBlock
                : throw Error(strategyPath, "strategy 'block' needs a block_structure [rows, columns]"),
            _ => throw Error(strategyPath, $"'{strategy}' is not tensor, channel, group or block"),
        };
        weights = weights with { Granularity = granularity };

        if (OptionalBool(fields, "symmetric", path) is bool symmetric)
        {
            weights = weights with { Symmetric = symmetric };
        }

        if (OptionalString(fields, "symmetric_range", path) is { } range)
        {
            weights = weights with
            {
                SymmetricRange = range switch
                {
                    "restricted" => SymmetricRange.Restricted,
                    "full" => SymmetricRange.Full,
                    _ => throw Error(Child(path, "symmetric_range"), $"'{range}' is not restricted or full"),
                },
            };
        }

        if (OptionalString(fields, "scale_dtype", path) is { } scaleType)
        {
            weights = weights with
            {
                ScaleStorage = scaleType switch
                {
                    "float32" => ScaleEncoding.Float32,
                    "float16" => ScaleEncoding.Float16,
                    "bfloat16" => ScaleEncoding.BFloat16,
                    _ => throw Error(Child(path, "scale_dtype"), $"'{scaleType}' is not float32, float16 or bfloat16"),
                },
            };
        }

        if (OptionalBool(fields, "saturate", path) is bool saturate)
        {
            weights = weights with { Saturate = saturate };
        }

        if (fields.TryGetValue("clipping", out JsonElement clippingElement))
        {
            weights = weights with { Clipping = ParseClipping(clippingElement, Child(path, "clipping")) };
        }

        // Combinations the format refuses whatever the weight's shape (asymmetric FP8, MXFP4 per channel).
        Check(path, () => weights.Validate(0, 0));
        return weights;
    }

    private static ClippingSearch? ParseClipping(JsonElement element, string path)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        Dictionary<string, JsonElement> fields = Fields(element, path, ClippingKeys);
        ClippingSearch clipping = ClippingSearch.Default;
        if (OptionalInt(fields, "grid", path) is int grid)
        {
            clipping = Guard(Child(path, "grid"), () => clipping with { Grid = grid });
        }

        if (OptionalDouble(fields, "max_shrink", path) is double maxShrink)
        {
            clipping = Guard(Child(path, "max_shrink"), () => clipping with { MaxShrink = maxShrink });
        }

        if (OptionalDouble(fields, "norm", path) is double norm)
        {
            clipping = Guard(Child(path, "norm"), () => clipping with { Norm = norm });
        }

        return clipping;
    }

    private static GptqOptions ParseGptq(JsonElement element, string path, GptqOptions start)
    {
        Dictionary<string, JsonElement> fields = Fields(element, path, GptqKeys);
        GptqOptions gptq = start;
        if (OptionalInt(fields, "block_size", path) is int blockSize)
        {
            gptq = Guard(Child(path, "block_size"), () => gptq with { BlockSize = blockSize });
        }

        if (OptionalDouble(fields, "dampening_frac", path) is double dampening)
        {
            gptq = Guard(Child(path, "dampening_frac"), () => gptq with { DampeningPercent = dampening });
        }

        if (OptionalBool(fields, "actorder", path) is bool actOrder)
        {
            gptq = gptq with { ActOrder = actOrder };
        }

        if (OptionalBool(fields, "static_groups", path) is bool staticGroups)
        {
            gptq = gptq with { StaticGroups = staticGroups };
        }

        if (OptionalInt(fields, "max_dampening_attempts", path) is int attempts)
        {
            gptq = Guard(Child(path, "max_dampening_attempts"), () => gptq with { MaxDampeningAttempts = attempts });
        }

        if (OptionalDouble(fields, "dampening_growth", path) is double growth)
        {
            gptq = Guard(Child(path, "dampening_growth"), () => gptq with { DampeningGrowth = growth });
        }

        if (fields.TryGetValue("rotation", out JsonElement rotationElement))
        {
            string at = Child(path, "rotation");
            HadamardRotationParameters? rotation = null;
            if (rotationElement.ValueKind != JsonValueKind.Null)
            {
                Dictionary<string, JsonElement> rotationFields = Fields(rotationElement, at, RotationKeys);
                int rotationBlock = OptionalInt(rotationFields, "block_size", at)
                    ?? throw Error(at, "'block_size' is required (16 for NVFP4, 32 for MX formats)");
                long? seed = null;
                if (rotationFields.TryGetValue("sign_seed", out JsonElement seedElement) && seedElement.ValueKind != JsonValueKind.Null)
                {
                    seed = seedElement.ValueKind == JsonValueKind.Number && seedElement.TryGetInt64(out long parsed)
                        ? parsed
                        : throw Error(Child(at, "sign_seed"), $"expected a 64-bit integer, got {Describe(seedElement)}");
                }

                rotation = new HadamardRotationParameters(rotationBlock, seed);
                Check(Child(at, "block_size"), rotation.Validate);
            }

            gptq = gptq with { Rotation = rotation };
        }

        return gptq;
    }

    /// <summary>Targets and ignores check their regular expressions when set; override keys are checked here.</summary>
    private static void CheckPattern(string pattern, string path)
    {
        if (pattern.Length == 0)
        {
            throw Error(path, "a pattern must not be empty");
        }

        if (pattern.StartsWith("re:", StringComparison.Ordinal))
        {
            try
            {
                _ = new Regex(pattern[3..], RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw Error(path, $"'{pattern}' is not a valid regular expression: {e.Message}");
            }
        }
    }

    private static NumberFormat ParseFormat(string name, string path)
    {
        // NumberFormat names are lower case with '-' ("fp8-e4m3"); llm-compressor users write "fp8_e4m3".
        string normalized = name.ToLowerInvariant().Replace('_', '-');
        try
        {
            return NumberFormat.FromName(normalized);
        }
        catch (ArgumentException)
        {
            throw Error(path, $"'{name}' is not a format; formats: {string.Join(", ", NumberFormat.All.Select(f => f.Name))}");
        }
    }

    /// <summary>The properties of an object, each allowed and at most once.</summary>
    private static Dictionary<string, JsonElement> Fields(JsonElement element, string path, string[] allowed)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw Error(path, $"expected an object, got {Describe(element)}");
        }

        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (JsonProperty property in element.EnumerateObject())
        {
            string at = Child(path, property.Name);
            if (Array.IndexOf(allowed, property.Name) < 0)
            {
                throw Error(at, $"unknown key; expected one of {string.Join(", ", allowed)}");
            }

            if (!fields.TryAdd(property.Name, property.Value))
            {
                throw Error(at, "the key appears twice");
            }
        }

        return fields;
    }

    private static JsonElement[] Items(JsonElement element, string path) =>
        element.ValueKind == JsonValueKind.Array
            ? element.EnumerateArray().ToArray()
            : throw Error(path, $"expected a list, got {Describe(element)}");

    private static string[] Strings(JsonElement element, string path) =>
        Items(element, path).Select((item, i) => item.ValueKind == JsonValueKind.String
            ? item.GetString()!
            : throw Error($"{path}[{i}]", $"expected a string, got {Describe(item)}")).ToArray();

    private static string? OptionalString(Dictionary<string, JsonElement> fields, string key, string path) =>
        !fields.TryGetValue(key, out JsonElement element) ? null
        : element.ValueKind == JsonValueKind.String ? element.GetString()
        : throw Error(Child(path, key), $"expected a string, got {Describe(element)}");

    private static bool? OptionalBool(Dictionary<string, JsonElement> fields, string key, string path) =>
        !fields.TryGetValue(key, out JsonElement element) ? null
        : element.ValueKind is JsonValueKind.True or JsonValueKind.False ? element.GetBoolean()
        : throw Error(Child(path, key), $"expected true or false, got {Describe(element)}");

    private static int? OptionalInt(Dictionary<string, JsonElement> fields, string key, string path) =>
        fields.TryGetValue(key, out JsonElement element) ? Int(element, Child(path, key)) : null;

    private static int Int(JsonElement element, string path) =>
        element.ValueKind == JsonValueKind.Number && element.TryGetInt32(out int value)
            ? value
            : throw Error(path, $"expected an integer, got {Describe(element)}");

    private static double? OptionalDouble(Dictionary<string, JsonElement> fields, string key, string path) =>
        !fields.TryGetValue(key, out JsonElement element) ? null
        : element.ValueKind == JsonValueKind.Number ? element.GetDouble()
        : throw Error(Child(path, key), $"expected a number, got {Describe(element)}");

    /// <summary>Runs an options setter or check and turns its <see cref="ArgumentException"/> into an error at
    /// <paramref name="path"/>.</summary>
    private static T Guard<T>(string path, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (ArgumentException e)
        {
            // The options' messages end with " (Parameter 'X')" and, out of range, the actual value: keep the sentence.
            string message = e.Message;
            int cut = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
            throw Error(path, cut >= 0 ? message[..cut] : message.Split('\n')[0]);
        }
    }

    private static void Check(string path, Action check) => Guard(path, () =>
    {
        check();
        return true;
    });

    private static string Child(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    private static InvalidDataException Error(string path, string message) =>
        new(path.Length == 0 ? $"recipe: {message}" : $"{path}: {message}");

    private static string Describe(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => $"the string '{element.GetString()}'",
        JsonValueKind.Number => $"the number {element.GetRawText()}",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "a list",
        JsonValueKind.Object => "an object",
        _ => element.ValueKind.ToString(),
    };
}
