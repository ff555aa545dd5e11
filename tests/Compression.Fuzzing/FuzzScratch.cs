// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Collections.Concurrent;

namespace Compression.Fuzzing;

/// <summary>
/// Per-thread scratch folders for targets whose API takes a path: the input is written to a file there (tmpfs
/// /dev/shm when the machine has it), the parser runs, and the file is deleted. A missing file is therefore never
/// an outcome of fuzz input.
/// </summary>
public static class FuzzScratch
{
    private static readonly ConcurrentBag<string> Created = [];

    [ThreadStatic]
    private static string? _folder;

    static FuzzScratch() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (string folder in Created)
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    };

    /// <summary>This thread's scratch folder (created on first use, removed when the process exits).</summary>
    public static string Folder
    {
        get
        {
            if (_folder is null || !Directory.Exists(_folder))
            {
                string root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
                _folder = Path.Combine(root, $"compression-fuzz-{Environment.ProcessId}-{Guid.NewGuid():N}");
                Directory.CreateDirectory(_folder);
                Created.Add(_folder);
            }

            return _folder;
        }
    }

    /// <summary>A subfolder of this thread's folder (created if needed).</summary>
    public static string Subfolder(string name)
    {
        string folder = Path.Combine(Folder, name);
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>Writes <paramref name="input"/> to <paramref name="name"/> in <paramref name="folder"/> (this thread's
    /// folder by default), runs <paramref name="action"/> on the path, and deletes the file.</summary>
    public static void WithFile(ReadOnlySpan<byte> input, string name, Action<string> action, string? folder = null)
    {
        string path = Path.Combine(folder ?? Folder, name);
        using (var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(input);
        }

        try
        {
            action(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
