// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text.Json;
using Compression.TorchSharp.Models;

namespace Compression.Tool.Infrastructure;

/// <summary>Loads a checkpoint folder into a TorchSharp model, turning the loader's failures into exit codes: an input
/// problem (3) or libtorch that cannot be loaded (4, with the reason).</summary>
internal static class ModelLoader
{
    /// <summary>Loads the model in <paramref name="checkpoint"/>'s folder (plain or compressed-tensors).</summary>
    public static CausalLanguageModel Load(CheckpointLocation checkpoint)
    {
        checkpoint.RequireModelFolder();
        NativeLibraries.EnsureTorchLoads();
        try
        {
            return HuggingFaceModels.Load(checkpoint.Folder);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or JsonException or UnauthorizedAccessException)
        {
            throw ToolException.Input($"cannot load model from '{checkpoint.Folder}': {e.Message}", e);
        }
    }
}
