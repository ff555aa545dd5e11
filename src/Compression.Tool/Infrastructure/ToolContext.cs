// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Tool.Infrastructure;

/// <summary>What every command gets besides its own settings: the output streams, the global options and the
/// cancellation token.</summary>
/// <param name="Stdout">Results: text, or the single JSON object with <c>--json</c>.</param>
/// <param name="Stderr">Progress, warnings and errors.</param>
/// <param name="Json">Whether the result goes out as JSON.</param>
/// <param name="Verbose">Whether errors carry stack traces.</param>
/// <param name="ShowProgress">Whether progress bars are drawn on <paramref name="Stderr"/> (only on a terminal).</param>
/// <param name="CancellationToken">Cancelled by Ctrl+C.</param>
internal sealed record ToolContext(TextWriter Stdout, TextWriter Stderr, bool Json, bool Verbose, bool ShowProgress,
    CancellationToken CancellationToken)
{
    /// <summary>Runs <paramref name="work"/> with a progress sink: Spectre progress bars on stderr when
    /// <see cref="ShowProgress"/>, otherwise none.</summary>
    public T WithProgress<T>(Func<IProgress<CompressionProgress>?, T> work) =>
        ShowProgress ? SpectreProgress.Run(Stderr, work) : work(null);

    /// <summary>A warning line on stderr (never on stdout, so <c>--json</c> output stays one object).</summary>
    public void Warn(string message) => Stderr.WriteLine($"compress: warning: {message}");
}
