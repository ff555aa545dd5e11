// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Compression.Quantization.Checkpoints;

namespace Compression.Reliability.Worker;

/// <summary>
/// <c>quantize-checkpoint &lt;in&gt; &lt;out&gt; &lt;preset&gt; [--crash-after N] [--cancel-after N] [--resume never] [--reference] [--progress]</c>:
/// runs <see cref="CheckpointQuantizer"/> (or, with <c>--reference</c>, the in-memory reference path) and prints one
/// JSON line: modules, how many were resumed/computed, sizes, wall time, peak memory (VmHWM, sampled peak RssAnon, GC
/// figures). <c>--crash-after N</c> kills the process with SIGKILL as soon as the N-th computed module is in the journal
/// (a deterministic crash); <c>--cancel-after N</c> cancels the token from a dedicated thread at that point and exits
/// with 3 on <see cref="OperationCanceledException"/>; <c>--progress</c> prints <c>progress &lt;n&gt; &lt;stage&gt;</c> per module
/// (flushed), so a parent can kill it at a chosen module.
/// </summary>
[WorkerCommand("quantize-checkpoint")]
internal static class QuantizeCheckpointCommand
{
    public static int Run(string[] args)
    {
        if (args.Length < 3)
        {
            Console.Error.WriteLine("usage: quantize-checkpoint <in> <out> <preset> [--crash-after N] [--cancel-after N] [--resume never] [--reference]");
            return 64;
        }

        QuantizerOptions options = QuantizerOptions.Preset(args[2]);
        int crashAfter = int.Parse(SyntheticCheckpointCommand.Option(args, "--crash-after") ?? "-1", CultureInfo.InvariantCulture);
        int cancelAfter = int.Parse(SyntheticCheckpointCommand.Option(args, "--cancel-after") ?? "-1", CultureInfo.InvariantCulture);
        var journal = CheckpointJournalOptions.Default with
        {
            Resume = SyntheticCheckpointCommand.Option(args, "--resume") == "never" ? CheckpointResume.Never : CheckpointResume.Matching,
            Log = line => Console.Error.WriteLine(line),
        };
        using var probe = new StreamingMemoryProbe();
        var clock = Stopwatch.StartNew();
        using var cancellation = new CancellationTokenSource();
        using var cancelNow = new ManualResetEventSlim();
        var canceller = new Thread(() =>
        {
            cancelNow.Wait();
            cancellation.Cancel();
        }) { IsBackground = true };
        canceller.Start();
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        try
        {
            if (args.Contains("--reference"))
            {
                IReadOnlyList<string> modules = InMemoryCheckpointReference.Quantize(args[0], args[1], options);
                result["modules"] = modules.Count;
            }
            else
            {
                int computed = 0;
                bool printProgress = args.Contains("--progress");
                var progress = new CallbackProgress(p =>
                {
                    if (printProgress)
                    {
                        Console.WriteLine($"progress {p.Completed} {p.Stage}");
                        Console.Out.Flush();
                    }

                    if (p.Stage != "quantize")
                    {
                        return;
                    }

                    computed++;
                    if (computed == crashAfter)
                    {
                        Console.Out.Flush();
                        Process.GetCurrentProcess().Kill();
                    }

                    if (computed == cancelAfter)
                    {
                        cancelNow.Set();
                        // Let the dedicated thread cancel before the next module starts, so the stop point is known.
                        SpinWait.SpinUntil(() => cancellation.IsCancellationRequested, TimeSpan.FromSeconds(10));
                    }
                });
                CheckpointQuantizationResult r = CheckpointQuantizer.Quantize(args[0], args[1], options, journal, progress, cancellation.Token);
                result["modules"] = r.Modules.Count;
                result["resumed"] = r.ModulesResumed;
                result["computed"] = r.ModulesComputed;
                result["discarded_journal"] = r.DiscardedJournal;
                result["original_bits"] = r.OriginalBits;
                result["compressed_bits"] = r.CompressedBits;
            }
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine("{\"cancelled\":true}");
            return 3;
        }

        clock.Stop();
        probe.Dispose();
        GCMemoryInfo gc = GC.GetGCMemoryInfo(GCKind.Any);
        result["wall_s"] = Math.Round(clock.Elapsed.TotalSeconds, 2);
        result["peak_rss_anon_bytes"] = probe.PeakRssAnonBytes;
        result["vm_hwm_bytes"] = StreamingMemoryProbe.VmHwmBytes;
        result["gc_heap_bytes"] = gc.HeapSizeBytes;
        result["gc_committed_bytes"] = gc.TotalCommittedBytes;
        result["gc_total_available_bytes"] = gc.TotalAvailableMemoryBytes;
        result["gc_collections"] = new[] { GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2) };
        result["gc_pause_ms"] = Math.Round(GC.GetTotalPauseDuration().TotalMilliseconds, 1);
        result["total_allocated_bytes"] = GC.GetTotalAllocatedBytes();
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>Reports synchronously on the quantizing thread (Progress&lt;T&gt; would post to the thread pool, too late
    /// for a deterministic crash point).</summary>
    private sealed class CallbackProgress(Action<CompressionProgress> report) : IProgress<CompressionProgress>
    {
        public void Report(CompressionProgress value) => report(value);
    }
}
