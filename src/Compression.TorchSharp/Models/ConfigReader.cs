// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.IO;
using System.Text.Json;

namespace Compression.TorchSharp.Models;

/// <summary>Typed reads of config.json fields with errors that name the file and the field.</summary>
internal readonly struct ConfigReader(JsonElement root, string source)
{
    public int Int(string name, int? fallback = null)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return fallback ?? throw new InvalidDataException($"{source}: the field '{name}' is missing.");
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int result)
            ? result
            : throw new InvalidDataException($"{source}: '{name}' must be an integer, not {value}.");
    }

    public double Double(string name, double fallback)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return fallback;
        }

        return value.ValueKind == JsonValueKind.Number ? value.GetDouble() : throw new InvalidDataException($"{source}: '{name}' must be a number, not {value}.");
    }

    public bool Bool(string name, bool fallback)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return fallback;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{source}: '{name}' must be true or false, not {value}."),
        };
    }

    public string String(string name, string fallback) =>
        root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : fallback;

    public bool IsNullOrAbsent(string name) => !root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null;

    public void Require(bool condition, string reason)
    {
        if (!condition)
        {
            throw new InvalidDataException($"{source}: {reason}.");
        }
    }
}
