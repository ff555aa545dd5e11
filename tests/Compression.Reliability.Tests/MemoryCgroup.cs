// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using System.Globalization;

namespace Compression.Reliability.Tests;

/// <summary>
/// A cgroup v1 memory cgroup with a hard limit, for running a worker under a real memory ceiling: the child writes
/// its own pid into <c>cgroup.procs</c> before it execs dotnet, so the whole runtime lives inside the limit from its
/// first allocation. Needs root and a writable <c>/sys/fs/cgroup/memory</c>; <see cref="TryCreate"/> returns null
/// elsewhere (CI containers), and the caller falls back to <c>DOTNET_GCHeapHardLimit</c>.
/// </summary>
internal sealed class MemoryCgroup : IDisposable
{
    private const string Root = "/sys/fs/cgroup/memory";

    private MemoryCgroup(string path) => Path = path;

    /// <summary>The cgroup's folder.</summary>
    public string Path { get; }

    /// <summary>The peak memory the kernel charged to the cgroup (anonymous memory and page cache), in bytes.</summary>
    public long MaxUsageBytes => long.Parse(File.ReadAllText(System.IO.Path.Combine(Path, "memory.max_usage_in_bytes")).Trim(), CultureInfo.InvariantCulture);

    /// <summary>How many times the limit was hit (page cache reclaimed to stay under it).</summary>
    public long FailCount => long.Parse(File.ReadAllText(System.IO.Path.Combine(Path, "memory.failcnt")).Trim(), CultureInfo.InvariantCulture);

    /// <summary>A new cgroup limited to <paramref name="limitBytes"/>, or null if cgroups cannot be used here.</summary>
    public static MemoryCgroup? TryCreate(long limitBytes)
    {
        if (!OperatingSystem.IsLinux() || !File.Exists(System.IO.Path.Combine(Root, "memory.limit_in_bytes")))
        {
            return null;
        }

        string path = System.IO.Path.Combine(Root, "compression-streaming-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            Directory.CreateDirectory(path);
            File.WriteAllText(System.IO.Path.Combine(path, "memory.limit_in_bytes"), limitBytes.ToString(CultureInfo.InvariantCulture));
            return new MemoryCgroup(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try
            {
                Directory.Delete(path);
            }
            catch (Exception again) when (again is IOException or UnauthorizedAccessException)
            {
                // Nothing was created, or it cannot be removed by us either.
            }

            return null;
        }
    }

    /// <summary><c>sh -c 'echo $$ &gt; cgroup.procs &amp;&amp; exec dotnet exec Worker.dll args…'</c>.</summary>
    public ProcessStartInfo StartInfo(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        ProcessStartInfo worker = WorkerProcess.StartInfo(args, environment);
        var info = new ProcessStartInfo("sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"echo $$ > '{System.IO.Path.Combine(Path, "cgroup.procs")}' && exec \"$0\" \"$@\"");
        info.ArgumentList.Add(worker.FileName);
        foreach (string arg in worker.ArgumentList)
        {
            info.ArgumentList.Add(arg);
        }

        foreach ((string key, string? value) in worker.Environment)
        {
            info.Environment[key] = value;
        }

        return info;
    }

    /// <summary>Removes the cgroup (its processes have exited; the kernel may need a moment to release it).</summary>
    public void Dispose()
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            try
            {
                Directory.Delete(Path);
                return;
            }
            catch (IOException)
            {
                Thread.Sleep(100);
            }
        }
    }
}
