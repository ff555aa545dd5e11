// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Tool;

/// <summary>A failure the tool reports as one line on stderr with a specific exit code (see <see cref="ExitCodes"/>).</summary>
public sealed class ToolException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="exitCode">The process exit code (one of <see cref="ExitCodes"/>).</param>
    /// <param name="message">The one-line message shown to the user.</param>
    /// <param name="inner">The underlying exception, shown with <c>--verbose</c>.</param>
    public ToolException(int exitCode, string message, Exception? inner = null)
        : base(message, inner) => ExitCode = exitCode;

    /// <summary>The process exit code.</summary>
    public int ExitCode { get; }

    /// <summary>A usage error (exit code 2).</summary>
    public static ToolException Usage(string message) => new(ExitCodes.Usage, message);

    /// <summary>A missing or invalid input (exit code 3).</summary>
    public static ToolException Input(string message, Exception? inner = null) => new(ExitCodes.InputError, message, inner);
}
