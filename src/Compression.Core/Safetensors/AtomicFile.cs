// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;

namespace Compression.Safetensors;

/// <summary>Writes a file so that readers only ever see the old complete file or the new complete file.</summary>
/// <remarks>The content goes to a temporary file in the same directory (so the rename cannot cross file systems),
/// is flushed to disk, then renamed over the target. On failure the temporary file is deleted and the target is
/// untouched.</remarks>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through a temporary file renamed into place.</summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="write">Writes the whole content to the stream it is given.</param>
    public static void Write(string path, Action<FileStream> write)
    {
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(directory);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temporary);
            }
            catch (IOException)
            {
                // Best effort: the original exception matters more than a leftover temporary file.
            }

            throw;
        }
    }
}
