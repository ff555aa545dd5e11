// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Fuzzing;

/// <summary>Every fuzz target by the name used on the command line and as the folder of its seeds under corpus/.</summary>
public static class FuzzTargets
{
    /// <summary>The targets, in the order the CI replay runs them.</summary>
    public static IReadOnlyDictionary<string, FuzzTarget> All { get; } = new Dictionary<string, FuzzTarget>(StringComparer.Ordinal)
    {
        ["safetensors"] = SafetensorsTargets.File,
        ["safetensors-header"] = SafetensorsTargets.Header,
        ["index"] = CheckpointIndexTargets.Index,
        ["shard"] = CheckpointIndexTargets.Shard,
        ["config"] = ConfigTargets.HuggingFaceConfig,
        ["compressed-tensor"] = CompressedTensorTargets.Serializer,
        ["compressed-tensors-codec"] = CompressedTensorTargets.Codec,
        ["recipe"] = RecipeTargets.Recipe,
        ["bpe"] = TokenizerTargets.Bpe,
    };
}
