// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Safetensors;

namespace Compression.Tool.Infrastructure;

/// <summary>The output folder of a command that writes a checkpoint: checked against the input before any work, and
/// completed with the input's tokenizer and generation files afterwards.</summary>
internal static class OutputFolder
{
    /// <summary>The full path of <paramref name="output"/>; exit code 2 when it is the input folder (inputs are never
    /// overwritten) or an existing file.</summary>
    public static string Validate(string output, CheckpointLocation input)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(output));
        if (string.Equals(full, Path.TrimEndingDirectorySeparator(input.Folder), StringComparison.Ordinal))
        {
            throw ToolException.Usage($"--out '{output}' is the input folder; write the result to another folder (the input is never modified).");
        }

        if (File.Exists(full))
        {
            throw ToolException.Usage($"--out '{output}' is a file; give a folder.");
        }

        return full;
    }

    /// <summary>Copies the input folder's other top-level files (tokenizer.json, tokenizer_config.json,
    /// special_tokens_map.json, generation_config.json, …) into <paramref name="output"/>, each through a temporary
    /// file and a rename. Weights, the index and config.json are the command's own output and are not copied.</summary>
    /// <returns>The names copied.</returns>
    public static IReadOnlyList<string> CopyCompanionFiles(string inputFolder, string output, CancellationToken cancellationToken)
    {
        var copied = new List<string>();
        foreach (string source in Directory.GetFiles(inputFolder).Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            string name = Path.GetFileName(source);
            if (name.StartsWith('.') || name == "config.json" || name == SafetensorsCheckpoint.IndexFileName ||
                name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".bin", StringComparison.Ordinal) ||
                name.EndsWith(".pt", StringComparison.Ordinal) || name.EndsWith(".pth", StringComparison.Ordinal))
            {
                continue;
            }

            AtomicFile.Write(Path.Combine(output, name), target =>
            {
                using FileStream stream = File.OpenRead(source);
                stream.CopyTo(target);
            });
            copied.Add(name);
        }

        return copied;
    }
}
