// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;

namespace Compression.Safetensors;

/// <summary>Writes a file so that readers only ever see the old complete file or the new complete file.</summary>
/// <remarks>The content goes to a temporary file in the same directory (so the rename cannot cross file systems),
/// is flushed to disk, then renamed over the target. On failure the temporary file is deleted and the target is
/// untouched. The temporary name starts with a dot and ends in <c>.tmp</c>, so a reader looking for
/// <c>*.safetensors</c> never takes it for a checkpoint. A file system that does not persist renames without a
/// directory sync may, after a power loss (not a process kill), show the old file again.</remarks>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through a temporary file renamed into place.</summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="write">Writes the whole content to the stream it is given.</param>
    public static void Write(string path, Action<FileStream> write)
    {
        using PreparedAtomicFile prepared = Prepare(path, write);
        prepared.Commit();
    }

    /// <summary>
    /// Writes the content of <paramref name="path"/> to a hidden temporary file beside it, flushed to disk, and returns
    /// it uncommitted: <see cref="PreparedAtomicFile.Commit"/> renames it into place, disposing deletes it. Use it to
    /// replace several files with their renames back to back.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="write">Writes the whole content to the stream it is given.</param>
    /// <returns>The prepared file; the target is untouched until it is committed.</returns>
    public static PreparedAtomicFile Prepare(string path, Action<FileStream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(directory);
        var prepared = new PreparedAtomicFile(fullPath, Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp"));
        try
        {
            using (var stream = new FileStream(prepared.TemporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            return prepared;
        }
        catch
        {
            prepared.Dispose();
            throw;
        }
    }
}
