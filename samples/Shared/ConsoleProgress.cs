// Progress for long operations: a Spectre.Console bar on an interactive terminal, plain lines (at most one per 10%)
// on the standard error otherwise, so that CI logs stay readable and the standard output holds only the results.

using System.Diagnostics;
using Spectre.Console;

namespace Compression.Samples;

/// <summary>Runs work that reports <see cref="CompressionProgress"/> and shows how far it is.</summary>
internal static class ConsoleProgress
{
    /// <summary>Whether the bars are drawn (a terminal that supports them); otherwise progress goes to stderr as lines.</summary>
    public static bool Interactive { get; } = AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;

    /// <summary>Runs <paramref name="work"/> with a progress sink labelled <paramref name="title"/>; returns its result.</summary>
    public static T Run<T>(string title, Func<IProgress<CompressionProgress>, T> work)
    {
        var clock = Stopwatch.StartNew();
        T result;
        if (Interactive)
        {
            result = AnsiConsole.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(context => work(new BarSink(context.AddTask(Markup.Escape(title), maxValue: 1), title)));
        }
        else
        {
            result = work(new LineSink(title));
        }

        Console.Error.WriteLine($"{title}: done in {clock.Elapsed.TotalSeconds:F1} s");
        return result;
    }

    /// <summary>Runs <paramref name="work"/> with a progress sink labelled <paramref name="title"/>.</summary>
    public static void Run(string title, Action<IProgress<CompressionProgress>> work) =>
        Run<int>(title, p =>
        {
            work(p);
            return 0;
        });

    /// <summary>
    /// A sink for another progress type (a training loop's steps, say) that forwards to <paramref name="sink"/>
    /// through <paramref name="map"/>.
    /// </summary>
    public static IProgress<T> Map<T>(IProgress<CompressionProgress> sink, Func<T, CompressionProgress> map) => new Mapped<T>(sink, map);

    private sealed class Mapped<T>(IProgress<CompressionProgress> sink, Func<T, CompressionProgress> map) : IProgress<T>
    {
        public void Report(T value) => sink.Report(map(value));
    }

    // Reports arrive on whatever thread the library reports from; ProgressTask is thread-safe, so report at once
    // (System.Progress<T> would post to the thread pool and could reorder them).
    private sealed class BarSink(ProgressTask task, string title) : IProgress<CompressionProgress>
    {
        public void Report(CompressionProgress value)
        {
            task.MaxValue = Math.Max(1, value.Total);
            task.Value = value.Completed;
            string where = value.Layer is null ? value.Stage : $"{value.Stage} {value.Layer}";
            task.Description = Markup.Escape($"{title}: {where}");
        }
    }

    private sealed class LineSink(string title) : IProgress<CompressionProgress>
    {
        private readonly Lock gate = new();
        private int lastDecile = -1;

        public void Report(CompressionProgress value)
        {
            int decile = (int)Math.Floor(value.Fraction * 10);
            lock (gate)
            {
                if (decile <= lastDecile)
                {
                    return;
                }

                lastDecile = decile;
            }

            string where = value.Layer is null ? value.Stage : $"{value.Stage} {value.Layer}";
            Console.Error.WriteLine($"{title}: {value.Completed}/{value.Total} ({100 * value.Fraction:F0}%) {where}");
        }
    }
}
