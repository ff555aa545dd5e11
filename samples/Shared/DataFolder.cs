// Where the samples find ../shared/data (the real corpora and checkpoints beside the repository), and what they do
// when it is missing: one clear line and exit code 2 rather than a stack trace from deep inside a loader.

namespace Compression.Samples;

/// <summary>Paths inside the shared data folder (<c>../shared/data</c> relative to the repository root).</summary>
internal static class DataFolder
{
    private static string? root;

    /// <summary>The shared data folder; exits the process with a message when it cannot be found.</summary>
    public static string Root => root ??= Locate();

    /// <summary>A file or folder inside the shared data folder; exits the process with a message when it is missing.</summary>
    public static string File(params string[] parts)
    {
        string path = Path.Combine([Root, .. parts]);
        if (!System.IO.File.Exists(path) && !Directory.Exists(path))
        {
            Fail($"'{path}' is missing from the shared data folder; see ../shared/data/README.md for what it should hold.");
        }

        return path;
    }

    /// <summary>Prints <paramref name="message"/> to the standard error and exits with code 2.</summary>
    public static void Fail(string message)
    {
        Console.Error.WriteLine(message);
        Environment.Exit(2);
    }

    private static string Locate()
    {
        // The repository root is the first folder above the program that holds Compression.sln (a 'dotnet run
        // --project' build lives in samples/X/bin/...); the shared data sits beside it. The working directory's
        // ../shared/data is the fallback for a build copied elsewhere but run from the root.
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(d.FullName, "Compression.sln")))
            {
                string beside = Path.GetFullPath(Path.Combine(d.FullName, "..", "shared", "data"));
                if (Directory.Exists(beside))
                {
                    return beside;
                }
            }
        }

        string fromWorkingDirectory = Path.GetFullPath(Path.Combine("..", "shared", "data"));
        if (!Directory.Exists(fromWorkingDirectory))
        {
            Fail($"The shared data folder was not found ('{fromWorkingDirectory}'). The samples read real checkpoints and text " +
                 "from ../shared/data beside the repository; put it there (see README.md, 'Data used') and run from the repository root.");
        }

        return fromWorkingDirectory;
    }
}
