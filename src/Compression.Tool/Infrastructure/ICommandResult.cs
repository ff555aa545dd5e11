// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Tool.Infrastructure;

/// <summary>What a command returns: serialized as the one JSON object of <c>--json</c>, or written as text.</summary>
internal interface ICommandResult
{
    /// <summary>Writes the human-readable form.</summary>
    void WriteText(TextWriter output);
}
