// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization.Checkpoints;

/// <summary>
/// How <see cref="CheckpointQuantizer"/> uses its journal: the folder <c>.&lt;output name&gt;.quantize-journal</c>
/// beside the output folder, where every quantized module is written as soon as it is computed, so that a run killed at
/// layer 70 of 80 resumes at layer 70.
/// </summary>
/// <example>
/// <code>
/// var journal = CheckpointJournalOptions.Default with { Resume = CheckpointResume.Never, Log = Console.Error.WriteLine };
/// CheckpointQuantizer.Quantize("llama", "llama-w4", QuantizerOptions.W4A16, journal);
/// </code>
/// </example>
public sealed record CheckpointJournalOptions
{
    /// <summary>Resume a matching journal, discard any other; no log.</summary>
    public static CheckpointJournalOptions Default { get; } = new();

    /// <summary>Whether a journal left by an interrupted run is reused. Default <see cref="CheckpointResume.Matching"/>.</summary>
    public CheckpointResume Resume
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Resume), value, "Matching or Never.");
    } = CheckpointResume.Matching;

    /// <summary>Receives one line per journal decision (resumed, discarded and why, deleted). Default none.</summary>
    public Action<string>? Log { get; init; }
}
