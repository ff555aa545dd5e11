// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;

namespace Compression.Safetensors;

/// <summary>
/// A file written completely (and flushed to disk) under a hidden temporary name beside its target, waiting for
/// <see cref="Commit"/> to rename it into place; disposing it uncommitted deletes the temporary file. Preparing every
/// file of a folder first and committing them one after the other brings the moment a reader could see some new and
/// some old files down to the gap between renames.
/// </summary>
public sealed class PreparedAtomicFile : IDisposable
{
    private bool _committed;

    internal PreparedAtomicFile(string path, string temporaryPath)
    {
        Path = path;
        TemporaryPath = temporaryPath;
    }

    /// <summary>The target, a full path.</summary>
    public string Path { get; }

    /// <summary>The hidden temporary file (<c>.&lt;name&gt;.&lt;guid&gt;.tmp</c>) holding the content until committed.</summary>
    public string TemporaryPath { get; }

    /// <summary>Renames the temporary file over the target (atomic on one file system).</summary>
    /// <exception cref="InvalidOperationException">Already committed.</exception>
    public void Commit()
    {
        if (_committed)
        {
            throw new InvalidOperationException($"'{Path}' was already committed.");
        }

        File.Move(TemporaryPath, Path, overwrite: true);
        _committed = true;
    }

    /// <summary>Deletes the temporary file unless it was committed.</summary>
    public void Dispose()
    {
        if (_committed)
        {
            return;
        }

        try
        {
            File.Delete(TemporaryPath);
        }
        catch (IOException)
        {
            // Best effort: a leftover hidden temporary file is harmless, and the caller's exception matters more.
        }

        _committed = true;
    }
}
