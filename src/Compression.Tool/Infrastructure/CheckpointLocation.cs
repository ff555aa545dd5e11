// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Safetensors;

namespace Compression.Tool.Infrastructure;

/// <summary>Where a checkpoint argument points: a folder, a <c>.safetensors</c> file or a sharded index, and the
/// folder that holds its <c>config.json</c> and tokenizer files.</summary>
/// <param name="Path">The argument as a full path.</param>
/// <param name="Folder">The folder of the checkpoint (the argument itself when it is a folder).</param>
internal sealed record CheckpointLocation(string Path, string Folder)
{
    /// <summary>The folder's <c>config.json</c>, or null when there is none.</summary>
    public string? ConfigPath => File.Exists(System.IO.Path.Combine(Folder, "config.json")) ? System.IO.Path.Combine(Folder, "config.json") : null;

    /// <summary>Resolves <paramref name="argument"/>; exit code 3 when it names nothing.</summary>
    public static CheckpointLocation Resolve(string argument)
    {
        string full = System.IO.Path.GetFullPath(argument);
        if (Directory.Exists(full))
        {
            return new CheckpointLocation(full, full);
        }

        if (File.Exists(full))
        {
            return new CheckpointLocation(full, System.IO.Path.GetDirectoryName(full)!);
        }

        throw ToolException.Input($"checkpoint '{argument}' does not exist (give a folder, a .safetensors file or a {SafetensorsCheckpoint.IndexFileName}).");
    }

    /// <summary>A model-level command needs a Hugging Face folder (config.json beside the weights).</summary>
    public void RequireModelFolder()
    {
        if (ConfigPath is null)
        {
            throw ToolException.Input($"'{Folder}' has no config.json; this command needs a Hugging Face checkpoint folder (config.json + model.safetensors).");
        }
    }

    /// <summary>Opens the safetensors checkpoint; exit code 3 when it is missing or invalid.</summary>
    public SafetensorsCheckpoint Open()
    {
        try
        {
            return SafetensorsCheckpoint.Open(Path);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            throw ToolException.Input($"cannot read checkpoint '{Path}': {e.Message}", e);
        }
    }
}
