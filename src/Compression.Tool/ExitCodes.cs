// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Tool;

/// <summary>The process exit codes of <c>compress</c> (also listed in <c>--help</c> and the tool's README).</summary>
public static class ExitCodes
{
    /// <summary>The command succeeded.</summary>
    public const int Success = 0;

    /// <summary>Usage error: unknown command or option, a missing or invalid argument (bad scheme, GPTQ without
    /// <c>--calib</c>, the output folder equal to the input, …).</summary>
    public const int Usage = 2;

    /// <summary>An input is missing, unreadable or invalid (no such file, a corrupt safetensors file, an unsupported
    /// architecture, a tokenizer that cannot be read).</summary>
    public const int InputError = 3;

    /// <summary>The operation itself failed (a format that cannot be written, libtorch that cannot be loaded, a
    /// numerical failure, an I/O error while writing).</summary>
    public const int OperationFailed = 4;

    /// <summary>Cancelled (Ctrl+C); nothing half-written is left under the output names.</summary>
    public const int Cancelled = 130;

    /// <summary>The text appended to every <c>--help</c> page.</summary>
    internal const string HelpEpilog = """
        Exit codes:
          0    success
          2    usage error: unknown command or option, invalid or missing argument
          3    input missing, unreadable or invalid (checkpoint, config.json, tokenizer, text file)
          4    the operation failed (unsupported format for the output, libtorch not loadable, I/O error, ...)
          130  cancelled (Ctrl+C); outputs are written atomically, so nothing half-written is left
        Global options: --json prints one JSON object on stdout and nothing else there; --verbose prints stack traces.
        """;
}
