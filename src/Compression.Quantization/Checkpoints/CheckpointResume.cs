// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Quantization.Checkpoints;

/// <summary>What <see cref="CheckpointQuantizer"/> does with the journal an earlier, interrupted run left beside the
/// output folder.</summary>
public enum CheckpointResume
{
    /// <summary>Reuse it if it was written for the same input (file lengths, header bytes, config.json) and the same
    /// options; otherwise delete it, say why in the log, and start over. Every reused module is also checked against
    /// the SHA-256 of its input tensor's bytes.</summary>
    Matching = 0,

    /// <summary>Delete any journal and compute every module.</summary>
    Never = 1,
}
