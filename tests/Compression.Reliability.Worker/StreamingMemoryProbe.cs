// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Globalization;

namespace Compression.Reliability.Worker;

/// <summary>
/// Samples <c>/proc/self/status</c> every 20 ms on a background thread and keeps the peak <c>RssAnon</c> (anonymous
/// resident memory: heap, stacks, native allocations; memory-mapped file pages are RssFile and not counted), and reads
/// the kernel's <c>VmHWM</c> (peak total RSS, file-backed pages included) at the end.
/// </summary>
public sealed class StreamingMemoryProbe : IDisposable
{
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _peakRssAnonKiB;

    public StreamingMemoryProbe()
    {
        Sample();
        _thread = new Thread(() =>
        {
            while (!_stop)
            {
                Sample();
                Thread.Sleep(20);
            }
        }) { IsBackground = true, Name = "memory probe" };
        _thread.Start();
    }

    /// <summary>The largest RssAnon seen so far, in bytes.</summary>
    public long PeakRssAnonBytes => Interlocked.Read(ref _peakRssAnonKiB) * 1024;

    /// <summary>The kernel's peak resident set (VmHWM), in bytes; file-backed pages included.</summary>
    public static long VmHwmBytes => Read("VmHWM:") * 1024;

    /// <summary>Stops sampling after one last sample.</summary>
    public void Dispose()
    {
        _stop = true;
        _thread.Join();
        Sample();
    }

    private void Sample()
    {
        long anon = Read("RssAnon:");
        long current;
        while (anon > (current = Interlocked.Read(ref _peakRssAnonKiB)) &&
               Interlocked.CompareExchange(ref _peakRssAnonKiB, anon, current) != current)
        {
        }
    }

    private static long Read(string key)
    {
        if (!File.Exists("/proc/self/status"))
        {
            return -1;
        }

        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        return -1;
    }
}
