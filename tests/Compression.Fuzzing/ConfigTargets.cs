// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text;
using Compression.TorchSharp.Models;

namespace Compression.Fuzzing;

/// <summary>Hugging Face <c>config.json</c> parsing: architecture detection, then <see cref="LlamaConfig.Parse"/> or
/// <see cref="Gpt2Config.Parse"/>. Parsing only; no TorchSharp module is created.</summary>
public static class ConfigTargets
{
    /// <summary>
    /// The input is the config text (decoded as <see cref="File.ReadAllText(string)"/> would). Documented:
    /// <see cref="InvalidDataException"/> (invalid config) and <see cref="NotSupportedException"/> (another architecture).
    /// </summary>
    public static void HuggingFaceConfig(ReadOnlySpan<byte> input)
    {
        string text = Encoding.UTF8.GetString(input);
        try
        {
            object config = HuggingFaceModels.ParseConfig(text, "fuzz/config.json");
            if (config is not (LlamaConfig or Gpt2Config))
            {
                throw new InvalidOperationException($"ParseConfig returned a {config.GetType()}.");
            }
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
        }
    }
}
