// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Testing;

/// <summary>Finds <c>../shared/data</c> (real checkpoints and corpora beside the repository; see its README.md).</summary>
public static class SharedData
{
    /// <summary>The repository root: the first folder above the test binaries that holds Compression.sln.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>The shared data folder, <c>{repo}/../shared/data</c>.</summary>
    public static string Directory { get; } = Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared", "data"));

    /// <summary>The full path of a file under the shared data folder.</summary>
    /// <exception cref="FileNotFoundException">The file is not there: tests that use shared data fail rather than skip.</exception>
    public static string File(params string[] parts)
    {
        string path = Path.Combine([Directory, .. parts]);
        return System.IO.File.Exists(path) || System.IO.Directory.Exists(path)
            ? path
            : throw new FileNotFoundException($"Shared test data '{path}' is missing; see ../shared/data/README.md.", path);
    }

    private static string FindRepositoryRoot()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(directory.FullName, "Compression.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Compression.sln above {AppContext.BaseDirectory}.");
    }
}
