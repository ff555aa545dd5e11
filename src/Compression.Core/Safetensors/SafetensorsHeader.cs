// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Text.Json;

namespace Compression.Safetensors;

/// <summary>Parses and validates a safetensors header. Every failure is an <see cref="System.IO.InvalidDataException"/>.</summary>
/// <remarks>
/// The layout (huggingface/safetensors): 8 bytes little-endian header length N, N bytes of UTF-8 JSON, then the data
/// section. The JSON maps each tensor name to <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> and may hold a
/// <c>"__metadata__"</c> object of string values. Offsets are relative to the data section; the tensors must tile
/// it exactly (no overlap, no hole), which is what the reference implementation enforces too.
/// </remarks>
internal static class SafetensorsHeader
{
    /// <summary>The reference implementation refuses headers above 100 MB; so do we, before allocating anything.</summary>
    public const long MaxHeaderLength = 100_000_000;

    public const string MetadataKey = "__metadata__";

    public static (List<SafetensorsTensorInfo> Tensors, Dictionary<string, string> Metadata) Parse(
        string file, ReadOnlySpan<byte> json, long dataLength)
    {
        // JsonDocument only checks the UTF-8 of a string when it is read; check all of it here so that a damaged byte
        // inside a name or value is reported as bad data rather than as an InvalidOperationException later.
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            ThrowHelper.ThrowInvalidData(file, "the header is not valid UTF-8.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            return ThrowHelper.ThrowInvalidData<(List<SafetensorsTensorInfo>, Dictionary<string, string>)>(
                file, $"the header is not well-formed JSON ({e.Message}).");
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                ThrowHelper.ThrowInvalidData(file, $"the header is a JSON {root.ValueKind}, not an object.");
            }

            var tensors = new List<SafetensorsTensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var names = new HashSet<string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (JsonProperty property in root.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    if (sawMetadata)
                    {
                        ThrowHelper.ThrowInvalidData(file, "the header has two __metadata__ entries.");
                    }

                    sawMetadata = true;
                    ParseMetadata(file, property.Value, metadata);
                    continue;
                }

                if (!names.Add(property.Name))
                {
                    ThrowHelper.ThrowInvalidData(file, $"tensor '{property.Name}' appears twice in the header.");
                }

                tensors.Add(ParseTensor(file, property.Name, property.Value, dataLength));
            }

            CheckTiling(file, tensors, dataLength);
            return (tensors, metadata);
        }
    }

    private static void ParseMetadata(string file, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            ThrowHelper.ThrowInvalidData(file, $"__metadata__ is a JSON {value.ValueKind}, not an object of strings.");
        }

        foreach (JsonProperty entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                ThrowHelper.ThrowInvalidData(file, $"__metadata__ value '{entry.Name}' is a JSON {entry.Value.ValueKind}, not a string.");
            }

            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
            {
                ThrowHelper.ThrowInvalidData(file, $"__metadata__ key '{entry.Name}' appears twice.");
            }
        }
    }

    private static SafetensorsTensorInfo ParseTensor(string file, string name, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            ThrowHelper.ThrowInvalidData(file, $"tensor '{name}' is a JSON {value.ValueKind}, not an object.");
        }

        if (!value.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            ThrowHelper.ThrowInvalidData(file, $"tensor '{name}' has no string \"dtype\".");
        }

        string dtypeName = dtypeElement.GetString()!;
        if (!SafetensorsDTypeExtensions.TryParse(dtypeName, out SafetensorsDType dtype))
        {
            ThrowHelper.ThrowInvalidData(file, $"tensor '{name}' has unknown dtype '{dtypeName}'.");
        }

        if (!value.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            ThrowHelper.ThrowInvalidData(file, $"tensor '{name}' has no \"shape\" array.");
        }

        var shape = new long[shapeElement.GetArrayLength()];
        long elements = 1;
        bool anyZero = false;
        int index = 0;
        foreach (JsonElement dimension in shapeElement.EnumerateArray())
        {
            if (!TryGetNonNegative(dimension, out long d))
            {
                ThrowHelper.ThrowInvalidData(file, $"tensor '{name}' has shape entry {dimension.GetRawText()}; dimensions are non-negative integers.");
            }

            shape[index++] = d;
            // Saturate instead of wrapping: a product that large can never match the data_offsets below.
            if (d == 0)
            {
                anyZero = true;
            }
            else
            {
                elements = elements > long.MaxValue / d ? long.MaxValue : elements * d;
            }
        }

        if (anyZero)
        {
            elements = 0;
        }

        if (!value.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array ||
            offsets.GetArrayLength() != 2)
        {
            ThrowHelper.ThrowInvalidData(file, $"tensor '{name}' has no \"data_offsets\" array of two integers.");
        }

        JsonElement beginElement = offsets[0], endElement = offsets[1];
        bool beginValid = TryGetNonNegative(beginElement, out long begin);
        bool endValid = TryGetNonNegative(endElement, out long end);
        if (!beginValid || !endValid)
        {
            ThrowHelper.ThrowInvalidData(file, $"tensor '{name}' has data_offsets {offsets.GetRawText()}; offsets are non-negative integers.");
        }

        if (begin > end || end > dataLength)
        {
            ThrowHelper.ThrowInvalidData(file,
                $"tensor '{name}' has data_offsets [{begin}, {end}] outside the data section of {dataLength} bytes.");
        }

        long expected = elements == long.MaxValue || elements > long.MaxValue / dtype.ElementSize()
            ? long.MaxValue
            : elements * dtype.ElementSize();
        if (expected != end - begin)
        {
            ThrowHelper.ThrowInvalidData(file,
                $"tensor '{name}' is {dtypeName} of shape [{string.Join(", ", shape)}] ({(expected == long.MaxValue ? "too many" : expected.ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes) " +
                $"but its data_offsets span {end - begin} bytes.");
        }

        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    private static bool TryGetNonNegative(JsonElement element, out long value)
    {
        value = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out value) && value >= 0;
    }

    private static void CheckTiling(string file, List<SafetensorsTensorInfo> tensors, long dataLength)
    {
        var byOffset = tensors.ToArray();
        Array.Sort(byOffset, static (a, b) => a.DataBegin != b.DataBegin
            ? a.DataBegin.CompareTo(b.DataBegin)
            : a.DataEnd.CompareTo(b.DataEnd));
        long position = 0;
        string? previous = null;
        foreach (SafetensorsTensorInfo info in byOffset)
        {
            if (info.DataBegin < position)
            {
                ThrowHelper.ThrowInvalidData(file, $"tensors '{previous}' and '{info.Name}' overlap in the data section.");
            }

            if (info.DataBegin > position)
            {
                ThrowHelper.ThrowInvalidData(file, $"the data section has unclaimed bytes [{position}, {info.DataBegin}) before tensor '{info.Name}'.");
            }

            position = info.DataEnd;
            previous = info.Name;
        }

        if (position != dataLength)
        {
            ThrowHelper.ThrowInvalidData(file, $"the data section is {dataLength} bytes but the tensors cover only {position}.");
        }
    }
}
