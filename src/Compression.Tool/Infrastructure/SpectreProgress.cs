// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Spectre.Console;

namespace Compression.Tool.Infrastructure;

/// <summary>
/// Adapts the library's <see cref="IProgress{T}"/> of <see cref="CompressionProgress"/> to Spectre.Console progress
/// bars on stderr: one bar per stage (quantize, calibrate, evaluate, …), its value the stage's completed count and its
/// description the current layer.
/// </summary>
/// <remarks>The library reports from whichever thread does the work, so the bars are looked up under a lock; Spectre
/// renders them on its own thread.</remarks>
internal sealed class SpectreProgress : IProgress<CompressionProgress>
{
    private readonly ProgressContext _context;
    private readonly Dictionary<string, ProgressTask> _tasks = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    private SpectreProgress(ProgressContext context) => _context = context;

    /// <summary>Runs <paramref name="work"/> while Spectre draws the bars on <paramref name="stderr"/>.</summary>
    public static T Run<T>(TextWriter stderr, Func<IProgress<CompressionProgress>?, T> work)
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stderr) });
        return console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(context =>
            {
                var sink = new SpectreProgress(context);
                T result = work(sink);
                sink.CompleteAll();
                return result;
            });
    }

    /// <inheritdoc/>
    public void Report(CompressionProgress value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_lock)
        {
            if (!_tasks.TryGetValue(value.Stage, out ProgressTask? task))
            {
                task = _context.AddTask(Markup.Escape(value.Stage), maxValue: Math.Max(1, value.Total));
                _tasks[value.Stage] = task;
            }

            task.MaxValue = Math.Max(1, value.Total);
            task.Value = Math.Min(value.Completed, task.MaxValue);
            task.Description = Markup.Escape(value.Layer is null ? value.Stage : $"{value.Stage} {value.Layer}");
        }
    }

    private void CompleteAll()
    {
        lock (_lock)
        {
            foreach (ProgressTask task in _tasks.Values)
            {
                task.Value = task.MaxValue;
                task.StopTask();
            }
        }
    }
}
