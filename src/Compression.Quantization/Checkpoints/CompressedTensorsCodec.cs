// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Compression.Quantization.Formats;
using Compression.Safetensors;

namespace Compression.Quantization.Checkpoints;

/// <summary>
/// Writes and reads quantized linear weights in the layout of the compressed-tensors library (the checkpoints
/// llm-compressor saves and vLLM loads): per module <c>weight_packed</c>, <c>weight_scale</c>,
/// <c>weight_zero_point</c>, <c>weight_g_idx</c>, <c>weight_shape</c> (or <c>weight</c> + <c>weight_scale</c> for FP8,
/// <c>weight_global_scale</c> for NVFP4), described by the <c>quantization_config</c> of <c>config.json</c>.
/// </summary>
/// <remarks>
/// <para>Formats: integers of 2–8 bits, symmetric or asymmetric, per tensor, channel or group
/// (<c>pack-quantized</c>: codes + 2^(b−1) packed LSB-first into int32 words along a row, asymmetric zero points packed
/// the same way along the output dimension); FP8 E4M3 (<c>float-quantized</c>: the E4M3 bytes as the weight); MXFP4
/// (<c>mxfp4-pack-quantized</c>: two E2M1 codes per byte, low nibble first, E8M0 scales as biased exponents) and NVFP4
/// (<c>nvfp4-pack-quantized</c>: the same codes, E4M3 block scales, and <c>weight_global_scale</c> = 1 / the tensor
/// scale). Act-order GPTQ results store codes in the original column order with <c>weight_g_idx</c>.</para>
/// <para>compressed-tensors keeps NVFP4's global scale as a divisor, and the float32 reciprocal of our tensor scale does
/// not always invert back to it; the exact tensor scale is therefore also written to the safetensors metadata
/// (<c>compression.tensor_scale.&lt;module&gt;</c>, float32 bits in hex), which other readers ignore, so that our
/// reload is bit-identical. Scales are stored in their own encoding (float32, float16 or bfloat16) so that reloading
/// decodes exactly the values that were written.</para>
/// <para>Not representable here (NotSupportedException): NF4, ternary, FP6/FP4 without MX or NVFP4 scaling, FP8 E5M2,
/// MXFP8/MXFP6/MXINT8, block granularity, double-quantized scales, MR-GPTQ rotations, and act-order with dynamic
/// groups on FP4 formats (compressed-tensors reads no <c>g_idx</c> for them). Use the library's own serializer for those.</para>
/// </remarks>
public static class CompressedTensorsCodec
{
    /// <summary>Integer codes packed into int32 words.</summary>
    public const string PackQuantized = "pack-quantized";

    /// <summary>FP8 E4M3 bytes as the weight.</summary>
    public const string FloatQuantized = "float-quantized";

    /// <summary>MXFP4: packed E2M1 codes, E8M0 scales.</summary>
    public const string Mxfp4PackQuantized = "mxfp4-pack-quantized";

    /// <summary>NVFP4: packed E2M1 codes, E4M3 block scales, a float32 global scale.</summary>
    public const string Nvfp4PackQuantized = "nvfp4-pack-quantized";

    /// <summary>Prefix of the safetensors metadata key holding a module's exact NVFP4 tensor scale.</summary>
    public const string TensorScaleMetadataPrefix = "compression.tensor_scale.";

    /// <summary>The compressed-tensors format a quantized weight is saved in.</summary>
    /// <exception cref="NotSupportedException">The weight has no compressed-tensors layout (see the remarks).</exception>
    public static string FormatOf(CompressedTensor tensor)
    {
        (QuantizedTensor q, int[]? _) = Unwrap(tensor);
        return FormatOf(q, permuted: tensor is GptqTensor { IsIdentityOrder: false });
    }

    /// <summary>The compressed-tensors <c>QuantizationArgs</c> of a quantized weight (the <c>weights</c> entry of a
    /// config group).</summary>
    /// <exception cref="NotSupportedException">The weight has no compressed-tensors layout.</exception>
    public static JsonObject WeightArguments(CompressedTensor tensor)
    {
        (QuantizedTensor q, int[]? permutation) = Unwrap(tensor);
        string format = FormatOf(q, permutation is not null);
        var args = new JsonObject
        {
            ["num_bits"] = q.Format is IntegerFormat integer ? integer.Bits : format == FloatQuantized ? 8 : 4,
            ["type"] = q.Format is IntegerFormat ? "int" : "float",
            ["symmetric"] = q.ZeroPointsArray is null,
        };
        (string strategy, int? groupSize) = format switch
        {
            Nvfp4PackQuantized => ("tensor_group", (int?)Nvfp4Format.BlockSize),
            Mxfp4PackQuantized => ("group", MicroscalingFormat.BlockSize),
            _ => q.Granularity switch
            {
                PerTensorGranularity => ("tensor", (int?)null),
                PerChannelGranularity => ("channel", null),
                PerGroupGranularity g => ("group", g.Size),
                _ => throw new NotSupportedException($"compressed-tensors has no layout for {q.Granularity} scales."),
            },
        };
        args["group_size"] = groupSize;
        args["strategy"] = strategy;
        args["block_structure"] = null;
        args["dynamic"] = false;
        args["actorder"] = permutation is null ? null : "group";
        // compressed-tensors' QuantizationArgs fields in its own order. Its scale_dtype null means "the weight's dtype";
        // the FP4 formats name their scale codes. zp_dtype is serialized only for asymmetric schemes (int8 codes).
        args["scale_dtype"] = format switch
        {
            Nvfp4PackQuantized => "torch.float8_e4m3fn",
            Mxfp4PackQuantized => "torch.uint8",
            _ => null,
        };
        args["zp_dtype"] = q.ZeroPointsArray is null ? null : "torch.int8";
        args["observer"] = "memoryless_minmax";   // compressed-tensors' default for static weights: min and max of the weight itself
        args["observer_kwargs"] = new JsonObject();
        return args;
    }

    /// <summary>Adds a module's compressed tensors (<c>{module}.weight_packed</c>, …) to a safetensors writer.</summary>
    /// <param name="writer">The checkpoint being written.</param>
    /// <param name="module">The module's name, e.g. <c>model.layers.0.mlp.down_proj</c>.</param>
    /// <param name="tensor">A <see cref="QuantizedTensor"/> or an unrotated <see cref="GptqTensor"/>.</param>
    /// <exception cref="NotSupportedException">The weight has no compressed-tensors layout.</exception>
    public static void Write(SafetensorsWriter writer, string module, CompressedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(writer);
        EncodedModule encoded = Encode(module, tensor);
        foreach (EncodedTensor t in encoded.Tensors)
        {
            writer.Add(t.Name, t.DType, t.Shape, t.Data);
        }

        foreach ((string key, string value) in encoded.Metadata)
        {
            writer.SetMetadata(key, value);
        }
    }

    /// <summary>A module's compressed tensors and safetensors metadata entries, in writing order.</summary>
    /// <exception cref="NotSupportedException">The weight has no compressed-tensors layout.</exception>
    public static EncodedModule Encode(string module, CompressedTensor tensor)
    {
        ArgumentException.ThrowIfNullOrEmpty(module);
        var writer = new EntryList();
        (QuantizedTensor q, int[]? permutation) = Unwrap(tensor);
        string format = FormatOf(q, permutation is not null);
        int rows = q.Rows, columns = q.Columns;
        byte[] codes = OriginalOrderCodes(q, permutation);
        string prefix = module + ".";
        switch (format)
        {
            case PackQuantized:
            {
                int bits = ((IntegerFormat)q.Format).Bits;
                writer.Add<int>(prefix + "weight_packed", SafetensorsDType.I32, [rows, PackedWords(columns, bits)], PackRowsToInt32(codes, rows, columns, bits));
                AddScales(writer, prefix, q);
                if (q.ZeroPointsArray is byte[] zeros)
                {
                    var layout = q.Layout;
                    if (q.Granularity is PerTensorGranularity)
                    {
                        // Per tensor, compressed-tensors keeps the zero point unpacked, as a signed int8.
                        writer.Add(prefix + "weight_zero_point", SafetensorsDType.I8, [1], new[] { (byte)(zeros[0] - (1 << (bits - 1))) });
                    }
                    else
                    {
                        // [rows, groups] packed along the rows, each group's column a dense bitstream like a weight row.
                        int groups = layout.SegmentsPerRow, wordRows = PackedWords(rows, bits);
                        var words = new int[wordRows * groups];
                        for (int r = 0; r < rows; r++)
                        {
                            for (int g = 0; g < groups; g++)
                            {
                                PutBits(words, g, groups, r, bits, zeros[layout.GroupOf(r, g)]);
                            }
                        }

                        writer.Add<int>(prefix + "weight_zero_point", SafetensorsDType.I32, [wordRows, groups], words);
                    }
                }

                writer.Add<long>(prefix + "weight_shape", SafetensorsDType.I64, [2], new long[] { rows, columns });
                break;
            }

            case FloatQuantized:
                writer.Add(prefix + "weight", SafetensorsDType.F8_E4M3, [rows, columns], codes);
                AddScales(writer, prefix, q);
                break;

            case Mxfp4PackQuantized:
            case Nvfp4PackQuantized:
            {
                var packed = new byte[rows * (columns / 2)];
                for (int i = 0; i < packed.Length; i++)
                {
                    packed[i] = (byte)((codes[2 * i] & 0xF) | (codes[2 * i + 1] << 4));
                }

                writer.Add(prefix + "weight_packed", SafetensorsDType.U8, [rows, columns / 2], packed);
                int groups = q.Layout.SegmentsPerRow;
                if (format == Mxfp4PackQuantized)
                {
                    writer.Add(prefix + "weight_scale", SafetensorsDType.U8, [rows, groups], q.ScalesArray.Select(E8M0.Encode).ToArray());
                }
                else
                {
                    writer.Add(prefix + "weight_scale", SafetensorsDType.F8_E4M3, [rows, groups],
                        q.ScalesArray.Select(s => MiniFloatCodec.Fp8E4M3.EncodeGridValue(s)).ToArray());
                    writer.Add<float>(prefix + "weight_global_scale", SafetensorsDType.F32, [1], new[] { 1f / q.GlobalScale });
                    writer.SetMetadata(TensorScaleMetadataPrefix + module,
                        BitConverter.SingleToInt32Bits(q.GlobalScale).ToString("x8", CultureInfo.InvariantCulture));
                }

                break;
            }
        }

        if (permutation is not null)
        {
            GptqTensor gptq = (GptqTensor)tensor;
            writer.Add<int>(prefix + "weight_g_idx", SafetensorsDType.I32, [columns], gptq.GroupIndex.ToArray());
        }

        return new EncodedModule(writer.Tensors, writer.Metadata);
    }

    // Collects entries with SafetensorsWriter's Add/SetMetadata shape.
    private sealed class EntryList
    {
        public List<EncodedTensor> Tensors { get; } = [];

        public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

        public void Add(string name, SafetensorsDType dtype, long[] shape, byte[] data) => Tensors.Add(new EncodedTensor(name, dtype, shape, data));

        public void Add<T>(string name, SafetensorsDType dtype, long[] shape, T[] data) where T : unmanaged =>
            Tensors.Add(new EncodedTensor(name, dtype, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray()));

        public void SetMetadata(string key, string value) => Metadata[key] = value;
    }

    /// <summary>Reads one module's quantized weight back from a checkpoint written in this layout.</summary>
    /// <param name="checkpoint">The checkpoint.</param>
    /// <param name="module">The module's name.</param>
    /// <param name="format">Its compressed-tensors format (from the config group).</param>
    /// <param name="weightArguments">Its <c>QuantizationArgs</c> (the config group's <c>weights</c>).</param>
    /// <returns>A <see cref="QuantizedTensor"/>, or a <see cref="GptqTensor"/> when a <c>weight_g_idx</c> reorders columns.</returns>
    /// <exception cref="InvalidDataException">A tensor is missing or has the wrong dtype or shape, or the arguments
    /// describe no supported layout.</exception>
    public static CompressedTensor Read(SafetensorsCheckpoint checkpoint, string module, string format, JsonObject weightArguments)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentException.ThrowIfNullOrEmpty(module);
        ArgumentNullException.ThrowIfNull(weightArguments);
        CheckNoDuplicateKeys(weightArguments, "weights");
        string prefix = module + ".";
        int bits = Int(weightArguments, "num_bits", module);
        string type = Str(weightArguments, "type", module) ?? "int";
        bool symmetric = Bool(weightArguments, "symmetric", module) ?? true;
        string strategy = Str(weightArguments, "strategy", module) ?? "tensor";
        int? groupSize = weightArguments["group_size"] is null ? null : Int(weightArguments, "group_size", module);
        QuantizedTensor q;
        int rows, columns;
        switch (format)
        {
            case PackQuantized:
            {
                if (type != "int" || bits is < 2 or > 8)
                {
                    throw Bad(module, $"pack-quantized needs 2- to 8-bit integers, not {bits}-bit {type}");
                }

                long[] shape = ReadInt64(checkpoint, prefix + "weight_shape", 2);
                (rows, columns) = (checked((int)shape[0]), checked((int)shape[1]));
                Granularity granularity = GranularityOf(strategy, groupSize, module);
                var layout = new ScaleLayout(granularity, rows, columns);
                SafetensorsTensorInfo packedInfo = Info(checkpoint, prefix + "weight_packed", SafetensorsDType.I32);
                bool legacy = packedInfo.Shape.Count == 2 && IsLegacyPacking(packedInfo.Shape[1], columns, bits);
                int[] words = ReadInt32(checkpoint, prefix + "weight_packed", [rows, legacy ? LegacyPackedWords(columns, bits) : PackedWords(columns, bits)]);
                byte[] codes = UnpackRowsFromInt32(words, rows, columns, bits, legacy);
                (float[] scales, ScaleEncoding encoding) = ReadScales(checkpoint, prefix, layout, granularity);
                byte[]? zeros = null;
                if (!symmetric)
                {
                    zeros = new byte[layout.GroupCount];
                    if (granularity is PerTensorGranularity)
                    {
                        ReadOnlySpan<byte> zp = Bytes(checkpoint, prefix + "weight_zero_point", SafetensorsDType.I8, [1]);
                        zeros[0] = (byte)(zp[0] + (1 << (bits - 1)));
                    }
                    else
                    {
                        int groups = layout.SegmentsPerRow;
                        SafetensorsTensorInfo zpInfo = Info(checkpoint, prefix + "weight_zero_point", SafetensorsDType.I32);
                        // The same writer packed both: legacy weights mean legacy zero points even where the row count
                        // gives both layouts the same number of words.
                        bool legacyZeros = zpInfo.Shape.Count == 2 && (legacy
                            ? zpInfo.Shape[0] == LegacyPackedWords(rows, bits)
                            : IsLegacyPacking(zpInfo.Shape[0], rows, bits));
                        int[] zw = ReadInt32(checkpoint, prefix + "weight_zero_point", [legacyZeros ? LegacyPackedWords(rows, bits) : PackedWords(rows, bits), groups]);
                        for (int r = 0; r < rows; r++)
                        {
                            for (int s = 0; s < groups; s++)
                            {
                                zeros[layout.GroupOf(r, s)] = (byte)GetBits(zw, s, groups, r, bits, legacyZeros);
                            }
                        }
                    }
                }

                q = Build(NumberFormat.Int(bits), granularity, rows, columns, codes, scales, encoding, zeros, 1f, module);
                break;
            }

            case FloatQuantized:
            {
                if (type != "float" || bits != 8)
                {
                    throw Bad(module, $"float-quantized holds FP8 E4M3, not {bits}-bit {type}");
                }

                SafetensorsTensorInfo info = Info(checkpoint, prefix + "weight", SafetensorsDType.F8_E4M3);
                if (info.Shape.Count != 2)
                {
                    throw Bad(module, "the FP8 weight must be a matrix");
                }

                (rows, columns) = (Dimension(info.Shape[0], info.Name), Dimension(info.Shape[1], info.Name));
                Granularity granularity = GranularityOf(strategy, groupSize, module);
                byte[] codes = checkpoint.GetBytes(prefix + "weight").ToArray();
                (float[] scales, ScaleEncoding encoding) = ReadScales(checkpoint, prefix, new ScaleLayout(granularity, rows, columns), granularity);
                q = Build(NumberFormat.Fp8E4M3, granularity, rows, columns, codes, scales, encoding, null, 1f, module);
                break;
            }

            case Mxfp4PackQuantized:
            case Nvfp4PackQuantized:
            {
                bool nv = format == Nvfp4PackQuantized;
                SafetensorsTensorInfo info = Info(checkpoint, prefix + "weight_packed", SafetensorsDType.U8);
                if (info.Shape.Count != 2)
                {
                    throw Bad(module, "weight_packed must be a matrix");
                }

                (rows, columns) = (Dimension(info.Shape[0], info.Name), Dimension(info.Shape[1] * 2, info.Name));
                int block = nv ? Nvfp4Format.BlockSize : MicroscalingFormat.BlockSize;
                if (columns % block != 0)
                {
                    throw Bad(module, $"{columns} columns are not a whole number of {block}-wide blocks");
                }

                ReadOnlySpan<byte> packed = checkpoint.GetBytes(prefix + "weight_packed");
                var codes = new byte[rows * columns];
                for (int i = 0; i < packed.Length; i++)
                {
                    codes[2 * i] = (byte)(packed[i] & 0xF);
                    codes[2 * i + 1] = (byte)(packed[i] >> 4);
                }

                int groups = columns / block;
                ReadOnlySpan<byte> scaleBytes = Bytes(checkpoint, prefix + "weight_scale", nv ? SafetensorsDType.F8_E4M3 : SafetensorsDType.U8, [rows, groups]);
                float[] scales = new float[scaleBytes.Length];
                for (int i = 0; i < scales.Length; i++)
                {
                    scales[i] = nv ? MiniFloatCodec.Fp8E4M3.Decode(scaleBytes[i]) : E8M0.Decode(scaleBytes[i]);
                }

                float tensorScale = 1f;
                if (nv)
                {
                    ReadOnlySpan<byte> global = Bytes(checkpoint, prefix + "weight_global_scale", SafetensorsDType.F32, [1]);
                    tensorScale = checkpoint.Metadata.TryGetValue(TensorScaleMetadataPrefix + module, out string? exact)
                        && int.TryParse(exact, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int exactBits)
                        ? BitConverter.Int32BitsToSingle(exactBits)
                        : 1f / BinaryPrimitives.ReadSingleLittleEndian(global);
                }

                NumberFormat element = nv ? NumberFormat.Nvfp4 : NumberFormat.Mxfp4;
                q = Build(element, Granularity.PerGroup(block), rows, columns, codes, scales,
                    nv ? ScaleEncoding.Fp8E4M3 : ScaleEncoding.E8M0, null, tensorScale, module);
                break;
            }

            default:
                throw Bad(module, $"the format '{format}' is not one of {PackQuantized}, {FloatQuantized}, {Mxfp4PackQuantized}, {Nvfp4PackQuantized}");
        }

        if (!checkpoint.Contains(prefix + "weight_g_idx"))
        {
            return q;
        }

        int[] groupIndex = ReadInt32(checkpoint, prefix + "weight_g_idx", [columns]);
        return FromGroupIndex(q, groupIndex, module);
    }

    /// <summary>
    /// Which modules of a checkpoint a <c>quantization_config</c> quantizes, with each one's format and arguments.
    /// Targets may be module names, <c>re:</c> regular expressions or the type name <c>Linear</c> (every module stored
    /// in a quantized layout); <c>ignore</c> entries are names or <c>re:</c> expressions.
    /// </summary>
    /// <exception cref="InvalidDataException">The config is not compressed-tensors, is not compressed, is malformed, or
    /// declares activation quantization other than dynamic per-token FP8 (see <see cref="SchemesOf"/>).</exception>
    public static IReadOnlyDictionary<string, (string Format, JsonObject Weights)> ModulesOf(JsonObject quantizationConfig, SafetensorsCheckpoint checkpoint) =>
        SchemesOf(quantizationConfig, checkpoint).ToDictionary(m => m.Key, m => (m.Value.Format, m.Value.Weights), StringComparer.Ordinal);

    /// <summary>
    /// Which modules of a checkpoint a <c>quantization_config</c> quantizes, with each one's format, weight arguments and
    /// declared input-activation quantization (as <see cref="ModulesOf"/>, plus the activations).
    /// </summary>
    /// <remarks>A group's <c>input_activations</c> may be null (weight-only) or dynamic per-token FP8 E4M3
    /// (compressed-tensors' <c>FP8_DYNAMIC</c>: <c>type</c> float, 8 bits, symmetric, <c>strategy</c> token,
    /// <c>dynamic</c> true). Anything else (static, calibrated activation scales, per-tensor or group activations,
    /// INT8 or FP4 activations) and any <c>output_activations</c> are refused.</remarks>
    /// <exception cref="InvalidDataException">The config is not compressed-tensors, is not compressed, is malformed, or
    /// declares an activation quantization that is not supported.</exception>
    public static IReadOnlyDictionary<string, CompressedModuleScheme> SchemesOf(JsonObject quantizationConfig, SafetensorsCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(quantizationConfig);
        ArgumentNullException.ThrowIfNull(checkpoint);
        CheckNoDuplicateKeys(quantizationConfig, "quantization_config");
        if (ConfigString(quantizationConfig, "quant_method", "quantization_config") != "compressed-tensors")
        {
            throw new InvalidDataException("quantization_config.quant_method is not 'compressed-tensors'.");
        }

        // Modules stored quantized: a weight_packed, or a weight with a weight_scale beside it.
        var candidates = checkpoint.Tensors.Select(t => t.Name)
            .Where(n => n.EndsWith(".weight_packed", StringComparison.Ordinal) || n.EndsWith(".weight_scale", StringComparison.Ordinal))
            .Select(n => n[..n.LastIndexOf('.')]).Distinct().ToList();
        if (candidates.Contains(""))
        {
            throw new InvalidDataException("The checkpoint has a quantized tensor without a module name ('.weight_packed' or '.weight_scale').");
        }

        string[] ignore = quantizationConfig["ignore"] is JsonArray ignoreList ? Strings(ignoreList, "quantization_config.ignore") : [];
        string topFormat = ConfigString(quantizationConfig, "format", "quantization_config") ?? PackQuantized;
        var result = new Dictionary<string, CompressedModuleScheme>(StringComparer.Ordinal);
        if (quantizationConfig["config_groups"] is not JsonObject groups)
        {
            throw new InvalidDataException("quantization_config has no config_groups object.");
        }

        foreach ((string groupName, JsonNode? node) in groups)
        {
            string path = $"quantization_config.config_groups.{groupName}";
            if (node is not JsonObject group || group["weights"] is not JsonObject weights || group["targets"] is not JsonArray targets)
            {
                throw new InvalidDataException($"{path} needs 'targets' and 'weights'.");
            }

            ActivationQuantization? activations = ReadActivationArguments(group["input_activations"], path + ".input_activations");
            if (group["output_activations"] is not null)
            {
                throw new InvalidDataException($"{path} quantizes output activations, which is not supported.");
            }

            string format = ConfigString(group, "format", path) ?? topFormat;
            string[] targetPatterns = Strings(targets, path + ".targets");
            foreach (string module in candidates)
            {
                if (!result.ContainsKey(module) && targetPatterns.Any(t => Matches(t, module)) && !ignore.Any(i => Matches(i, module)))
                {
                    result[module] = new CompressedModuleScheme(format, weights, activations);
                }
            }
        }

        return result;
    }

    /// <summary>The compressed-tensors <c>QuantizationArgs</c> of declared input activations (a config group's
    /// <c>input_activations</c>), every field in the reference's order, as its <c>FP8_DYNAMIC</c> preset serializes:
    /// 8-bit float, symmetric, <c>strategy</c> token, <c>dynamic</c> true, and no observer (dynamic scales are computed
    /// at run time, so compressed-tensors' validator sets it to null).</summary>
    public static JsonObject ActivationArguments(ActivationQuantization activations)
    {
        ArgumentNullException.ThrowIfNull(activations);
        // The record admits only dynamic per-token FP8 E4M3; the fields below are that scheme's.
        return new JsonObject
        {
            ["num_bits"] = 8,
            ["type"] = "float",
            ["symmetric"] = true,
            ["group_size"] = null,
            ["strategy"] = "token",
            ["block_structure"] = null,
            ["dynamic"] = true,
            ["actorder"] = null,
            ["scale_dtype"] = null,
            ["zp_dtype"] = null,                    // serialized only for asymmetric schemes
            ["observer"] = null,                    // no observer for dynamic quantization
            ["observer_kwargs"] = new JsonObject(),
        };
    }

    /// <summary>Reads a group's <c>input_activations</c>: null, or dynamic per-token FP8 E4M3; anything else is refused
    /// with the reason.</summary>
    private static ActivationQuantization? ReadActivationArguments(JsonNode? node, string path)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not JsonObject args)
        {
            throw new InvalidDataException($"{path} is not an object.");
        }

        string module = path;
        // compressed-tensors' DynamicType also allows "local" (NVFP4's per-group activation scales): not supported.
        JsonNode? dynamicNode = args["dynamic"];
        bool dynamic = dynamicNode is null ? false
            : dynamicNode is JsonValue value && value.TryGetValue(out bool flag) ? flag
            : throw Bad(module, $"dynamic is {dynamicNode.ToJsonString()}; only true (dynamic per-token FP8) is supported");
        if (!dynamic)
        {
            throw Bad(module, "quantizes activations with static (calibrated) scales, which is not supported; only dynamic per-token " +
                "FP8 activations (strategy token, dynamic true) are read");
        }

        int bits = Int(args, "num_bits", module);
        string type = Str(args, "type", module) ?? "int";
        string strategy = Str(args, "strategy", module) ?? "tensor";
        bool symmetric = Bool(args, "symmetric", module) ?? true;
        if (type != "float" || bits != 8 || strategy != "token" || !symmetric || args["group_size"] is not null || args["block_structure"] is not null)
        {
            throw Bad(module, $"declares {bits}-bit {type} {(symmetric ? "symmetric" : "asymmetric")} activations with strategy '{strategy}'; " +
                "only dynamic per-token symmetric FP8 E4M3 activations are supported");
        }

        return ActivationQuantization.Fp8PerTokenDynamic;
    }

    // ---- helpers ----

    /// <summary>Bounds a <c>re:</c> pattern's match: the pattern comes from the file, and a catastrophic one must not hang the reader.</summary>
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(1);

    private static bool Matches(string pattern, string module)
    {
        if (pattern == "Linear" || pattern == module)
        {
            return true;
        }

        if (!pattern.StartsWith("re:", StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            return System.Text.RegularExpressions.Regex.IsMatch(module, "^(?:" + pattern[3..] + ")$",
                System.Text.RegularExpressions.RegexOptions.None, MatchTimeout);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"quantization_config: '{pattern}' is not a valid regular expression ({e.Message}).", e);
        }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException e)
        {
            throw new InvalidDataException($"quantization_config: matching '{pattern}' against '{module}' took longer than {MatchTimeout.TotalSeconds} s.", e);
        }
    }

    private static (QuantizedTensor Quantized, int[]? Permutation) Unwrap(CompressedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return tensor switch
        {
            QuantizedTensor q => (q, null),
            GptqTensor { Rotation: not null } => throw new NotSupportedException(
                "A Hadamard-rotated (MR-GPTQ) weight has no compressed-tensors layout here; save it with the library's own serializer."),
            GptqTensor g => (g.Quantized, g.IsIdentityOrder ? null : g.Permutation.ToArray()),
            _ => throw new NotSupportedException($"A '{tensor.Kind}' tensor has no compressed-tensors layout."),
        };
    }

    private static string FormatOf(QuantizedTensor q, bool permuted)
    {
        if (q.ScaleEncoding == ScaleEncoding.DoubleQuantizedInt8)
        {
            throw new NotSupportedException("Double-quantized scales have no compressed-tensors layout.");
        }

        if (q.Granularity is PerBlockGranularity)
        {
            throw new NotSupportedException("Block-granular scales are not written in the compressed-tensors layout.");
        }

        string format = q.Format switch
        {
            IntegerFormat => PackQuantized,
            _ when ReferenceEquals(q.Format, NumberFormat.Fp8E4M3) => FloatQuantized,
            _ when ReferenceEquals(q.Format, NumberFormat.Mxfp4) => Mxfp4PackQuantized,
            _ when ReferenceEquals(q.Format, NumberFormat.Nvfp4) => Nvfp4PackQuantized,
            _ => throw new NotSupportedException(
                $"compressed-tensors has no layout for {q.Format.Name}; supported: int2–int8, fp8-e4m3, mxfp4, nvfp4. Save it with the library's own serializer."),
        };
        if (format is PackQuantized or FloatQuantized && q.ScaleEncoding is not (ScaleEncoding.Float32 or ScaleEncoding.Float16 or ScaleEncoding.BFloat16))
        {
            throw new NotSupportedException($"{q.ScaleEncoding} scales are not written in the compressed-tensors layout.");
        }

        if (permuted && format is Mxfp4PackQuantized or Nvfp4PackQuantized)
        {
            throw new NotSupportedException(
                "Act-order with dynamic groups on FP4 formats needs g_idx, which compressed-tensors does not read for them; use static groups.");
        }

        return format;
    }

    private static byte[] OriginalOrderCodes(QuantizedTensor q, int[]? permutation)
    {
        byte[] stored = q.UnpackCodes();
        if (permutation is null)
        {
            return stored;
        }

        int rows = q.Rows, columns = q.Columns;
        var codes = new byte[stored.Length];
        for (int r = 0; r < rows; r++)
        {
            int o = r * columns;
            for (int s = 0; s < columns; s++)
            {
                codes[o + permutation[s]] = stored[o + s];
            }
        }

        return codes;
    }

    private static CompressedTensor FromGroupIndex(QuantizedTensor q, int[] groupIndex, string module)
    {
        // Any order that makes each group contiguous decodes the same weight: a stable sort of the columns by group.
        int columns = q.Columns, width = q.Layout.SegmentWidth;
        int[] permutation = Enumerable.Range(0, columns).OrderBy(c => groupIndex[c]).ToArray();
        for (int s = 0; s < columns; s++)
        {
            if (groupIndex[permutation[s]] != s / width)
            {
                throw Bad(module, $"weight_g_idx does not give every group exactly {width} columns");
            }
        }

        byte[] original = q.UnpackCodes();
        var stored = new byte[original.Length];
        for (int r = 0; r < q.Rows; r++)
        {
            int o = r * columns;
            for (int s = 0; s < columns; s++)
            {
                stored[o + s] = original[o + permutation[s]];
            }
        }

        QuantizedTensor reordered = Build(q.Format, q.Granularity, q.Rows, columns, stored, q.ScalesArray, q.ScaleEncoding, q.ZeroPointsArray, q.GlobalScale, module);
        return new GptqTensor(reordered, permutation);
    }

    private static QuantizedTensor Build(NumberFormat format, Granularity granularity, int rows, int columns, byte[] codes, float[] scales,
        ScaleEncoding encoding, byte[]? zeros, float globalScale, string module)
    {
        var grouped = (GroupedFormat)format;
        int max = (1 << grouped.CodeBits) - 1;
        foreach (byte code in codes)
        {
            if (code > max)
            {
                throw Bad(module, $"a code exceeds {grouped.CodeBits} bits");
            }
        }

        int stride = grouped.PackedRowLength(columns);
        var packed = new byte[rows * stride];
        for (int r = 0; r < rows; r++)
        {
            grouped.PackRow(codes.AsSpan(r * columns, columns), packed.AsSpan(r * stride, stride));
        }

        return new QuantizedTensor(format, granularity, rows, columns, packed, stride, scales, encoding, zeros, globalScale);
    }

    private static Granularity GranularityOf(string strategy, int? groupSize, string module) => strategy switch
    {
        "tensor" => Granularity.PerTensor,
        "channel" => Granularity.PerChannel,
        "group" when groupSize is > 0 => Granularity.PerGroup(groupSize.Value),
        _ => throw Bad(module, $"strategy '{strategy}' (group_size {groupSize?.ToString(CultureInfo.InvariantCulture) ?? "none"}) is not tensor, channel or group with a positive size"),
    };

    private static void AddScales(EntryList writer, string prefix, QuantizedTensor q)
    {
        var layout = q.Layout;
        long[] shape = q.Granularity is PerTensorGranularity ? [1] : [q.Rows, layout.SegmentsPerRow];
        switch (q.ScaleEncoding)
        {
            case ScaleEncoding.Float16:
                writer.Add<Half>(prefix + "weight_scale", SafetensorsDType.F16, shape, q.ScalesArray.Select(s => (Half)s).ToArray());
                break;
            case ScaleEncoding.BFloat16:
                writer.Add<ushort>(prefix + "weight_scale", SafetensorsDType.BF16, shape,
                    q.ScalesArray.Select(s => (ushort)(BitConverter.SingleToUInt32Bits(s) >> 16)).ToArray());
                break;
            default:
                writer.Add<float>(prefix + "weight_scale", SafetensorsDType.F32, shape, q.ScalesArray);
                break;
        }
    }

    private static (float[] Scales, ScaleEncoding Encoding) ReadScales(SafetensorsCheckpoint checkpoint, string prefix, ScaleLayout layout, Granularity granularity)
    {
        string name = prefix + "weight_scale";
        SafetensorsTensorInfo info = checkpoint.Contains(name) ? checkpoint.GetInfo(name) : throw Missing(name);
        long[] expected = granularity is PerTensorGranularity ? [1] : [layout.Rows, layout.SegmentsPerRow];
        CheckShape(info, expected);
        ReadOnlySpan<byte> bytes = checkpoint.GetBytes(name);
        var scales = new float[layout.GroupCount];
        switch (info.DType)
        {
            case SafetensorsDType.F32:
                for (int i = 0; i < scales.Length; i++)
                {
                    scales[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]);
                }

                return (scales, ScaleEncoding.Float32);
            case SafetensorsDType.F16:
                for (int i = 0; i < scales.Length; i++)
                {
                    scales[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(2 * i)..]);
                }

                return (scales, ScaleEncoding.Float16);
            case SafetensorsDType.BF16:
                for (int i = 0; i < scales.Length; i++)
                {
                    scales[i] = BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16);
                }

                return (scales, ScaleEncoding.BFloat16);
            default:
                throw new InvalidDataException($"{name} is {info.DType}; F32, F16 or BF16 expected.");
        }
    }

    /// <summary>Words per packed row of <paramref name="count"/> codes: compressed-tensors (0.18 and later) packs densely,
    /// code i at bits [i·b, (i + 1)·b) of the row's little-endian bitstream, a code of 3, 5, 6 or 7 bits straddling two
    /// words where it must (32 codes fill exactly b words).</summary>
    internal static int PackedWords(int count, int bits) => (int)(((long)count * bits + 31) / 32);

    /// <summary>Words per row in the layout compressed-tensors wrote before 0.18: ⌊32/b⌋ codes per word, the high bits
    /// unused. It equals <see cref="PackedWords"/> for 1, 2, 4 and 8 bits.</summary>
    internal static int LegacyPackedWords(int count, int bits) => (count + 32 / bits - 1) / (32 / bits);

    /// <summary>Whether a stored word count can only be the legacy layout (read for files of older writers, ours
    /// included); when both layouts give the same count the current dense one is assumed.</summary>
    private static bool IsLegacyPacking(long storedWords, int count, int bits) =>
        storedWords != PackedWords(count, bits) && storedWords == LegacyPackedWords(count, bits);

    internal static int[] PackRowsToInt32(byte[] codes, int rows, int columns, int bits)
    {
        int words = PackedWords(columns, bits);
        var packed = new int[rows * words];
        for (int r = 0; r < rows; r++)
        {
            Span<int> row = packed.AsSpan(r * words, words);
            for (int c = 0; c < columns; c++)
            {
                PutBits(row, 0, 1, c, bits, codes[r * columns + c]);
            }
        }

        return packed;
    }

    internal static byte[] UnpackRowsFromInt32(int[] packed, int rows, int columns, int bits, bool legacy = false)
    {
        int words = legacy ? LegacyPackedWords(columns, bits) : PackedWords(columns, bits);
        var codes = new byte[rows * columns];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<int> row = packed.AsSpan(r * words, words);
            for (int c = 0; c < columns; c++)
            {
                codes[r * columns + c] = (byte)GetBits(row, 0, 1, c, bits, legacy);
            }
        }

        return codes;
    }

    /// <summary>Writes code <paramref name="index"/> of a dense bitstream whose words are <paramref name="words"/>[k·stride + column].</summary>
    private static void PutBits(Span<int> words, int column, int stride, int index, int bits, int code)
    {
        long bit = (long)index * bits;
        int word = (int)(bit >> 5), offset = (int)(bit & 31);
        words[word * stride + column] |= code << offset;
        if (offset + bits > 32)
        {
            words[(word + 1) * stride + column] |= code >>> (32 - offset);
        }
    }

    /// <summary>Reads code <paramref name="index"/> of a dense (or legacy: ⌊32/b⌋ per word) bitstream.</summary>
    private static int GetBits(ReadOnlySpan<int> words, int column, int stride, int index, int bits, bool legacy)
    {
        int mask = (1 << bits) - 1;
        if (legacy)
        {
            int perWord = 32 / bits;
            return (words[index / perWord * stride + column] >>> (index % perWord * bits)) & mask;
        }

        long bit = (long)index * bits;
        int word = (int)(bit >> 5), offset = (int)(bit & 31);
        uint value = (uint)words[word * stride + column] >> offset;
        if (offset + bits > 32)
        {
            value |= (uint)words[(word + 1) * stride + column] << (32 - offset);
        }

        return (int)(value & (uint)mask);
    }

    private static SafetensorsTensorInfo Info(SafetensorsCheckpoint checkpoint, string name, SafetensorsDType dtype)
    {
        SafetensorsTensorInfo info = checkpoint.Contains(name) ? checkpoint.GetInfo(name) : throw Missing(name);
        return info.DType == dtype ? info : throw new InvalidDataException($"{name} is {info.DType}; {dtype} expected.");
    }

    private static ReadOnlySpan<byte> Bytes(SafetensorsCheckpoint checkpoint, string name, SafetensorsDType dtype, long[] shape)
    {
        CheckShape(Info(checkpoint, name, dtype), shape);
        return checkpoint.GetBytes(name);
    }

    private static int[] ReadInt32(SafetensorsCheckpoint checkpoint, string name, long[] shape)
    {
        ReadOnlySpan<byte> bytes = Bytes(checkpoint, name, SafetensorsDType.I32, shape);
        var values = new int[bytes.Length / 4];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[(4 * i)..]);
        }

        return values;
    }

    private static long[] ReadInt64(SafetensorsCheckpoint checkpoint, string name, int count)
    {
        SafetensorsTensorInfo info = checkpoint.Contains(name) ? checkpoint.GetInfo(name) : throw Missing(name);
        if (info.ElementCount != count || info.DType is not (SafetensorsDType.I64 or SafetensorsDType.I32))
        {
            throw new InvalidDataException($"{name} must hold {count} integers (I64 or I32); it is {info.DType} [{string.Join(", ", info.Shape)}].");
        }

        ReadOnlySpan<byte> bytes = checkpoint.GetBytes(name);
        var values = new long[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = info.DType == SafetensorsDType.I64 ? BinaryPrimitives.ReadInt64LittleEndian(bytes[(8 * i)..]) : BinaryPrimitives.ReadInt32LittleEndian(bytes[(4 * i)..]);
            if (values[i] is < 0 or > int.MaxValue)
            {
                throw new InvalidDataException($"{name}[{i}] = {values[i]} is not a valid dimension.");
            }
        }

        return values;
    }

    private static void CheckShape(SafetensorsTensorInfo info, long[] expected)
    {
        if (!info.Shape.SequenceEqual(expected))
        {
            throw new InvalidDataException($"{info.Name} has shape [{string.Join(", ", info.Shape)}]; [{string.Join(", ", expected)}] expected.");
        }
    }

    private static int Int(JsonObject args, string key, string module)
    {
        try
        {
            return args[key]?.GetValue<int>() ?? throw Bad(module, $"the weight arguments have no '{key}'");
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw Bad(module, $"'{key}' is not an integer");
        }
    }

    private static string? Str(JsonObject args, string key, string module)
    {
        try
        {
            return args[key]?.GetValue<string>();
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw Bad(module, $"'{key}' is not a string");
        }
    }

    /// <summary>A dimension read from a tensor's shape, which must fit an <see cref="int"/>.</summary>
    private static int Dimension(long value, string name) =>
        value is >= 0 and <= int.MaxValue ? (int)value : throw new InvalidDataException($"{name} has a dimension of {value}; at most {int.MaxValue} is supported.");

    /// <summary>
    /// A <see cref="JsonObject"/> parsed from text with a key twice throws <see cref="ArgumentException"/> on first
    /// access (found by fuzzing); refuse such a config up front, as the malformed input it is.
    /// </summary>
    private static void CheckNoDuplicateKeys(JsonNode? node, string path)
    {
        try
        {
            switch (node)
            {
                case JsonObject obj:
                    foreach ((string key, JsonNode? child) in obj)
                    {
                        CheckNoDuplicateKeys(child, $"{path}.{key}");
                    }

                    break;
                case JsonArray array:
                    for (int i = 0; i < array.Count; i++)
                    {
                        CheckNoDuplicateKeys(array[i], $"{path}[{i}]");
                    }

                    break;
            }
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path} has a key twice ({e.Message}).", e);
        }
    }

    private static bool? Bool(JsonObject args, string key, string module)
    {
        try
        {
            return args[key]?.GetValue<bool>();
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw Bad(module, $"'{key}' is not true or false");
        }
    }

    /// <summary>An optional string field of the config (null when absent or null); any other JSON type is refused.</summary>
    private static string? ConfigString(JsonObject node, string key, string path)
    {
        try
        {
            return node[key]?.GetValue<string>();
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}.{key} is not a string.", e);
        }
    }

    private static string[] Strings(JsonArray array, string path)
    {
        var result = new string[array.Count];
        for (int i = 0; i < result.Length; i++)
        {
            try
            {
                result[i] = array[i]?.GetValue<string>() ?? throw new InvalidDataException($"{path}[{i}] is null, not a string.");
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                throw new InvalidDataException($"{path}[{i}] is not a string.", e);
            }
        }

        return result;
    }

    private static InvalidDataException Missing(string name) => new($"The checkpoint has no tensor '{name}'.");

    private static InvalidDataException Bad(string module, string reason) => new($"{module}: {reason}.");
}

/// <summary>How a checkpoint stores one quantized module: its compressed-tensors format, its weight arguments (the
/// group's <c>weights</c>) and its declared input-activation quantization (null: weight-only).</summary>
/// <param name="Format">The group's format, e.g. <c>float-quantized</c>.</param>
/// <param name="Weights">The group's <c>weights</c> <c>QuantizationArgs</c>.</param>
/// <param name="InputActivations">Dynamic per-token FP8 activations, or null.</param>
public sealed record CompressedModuleScheme(string Format, JsonObject Weights, ActivationQuantization? InputActivations);

/// <summary>One tensor of a checkpoint being written: name, dtype, shape and little-endian bytes.</summary>
public sealed record EncodedTensor(string Name, SafetensorsDType DType, long[] Shape, byte[] Data);

/// <summary>A module's compressed tensors and the safetensors metadata entries they need.</summary>
public sealed record EncodedModule(IReadOnlyList<EncodedTensor> Tensors, IReadOnlyDictionary<string, string> Metadata);
