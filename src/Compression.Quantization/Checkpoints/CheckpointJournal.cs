// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Compression.Safetensors;

namespace Compression.Quantization.Checkpoints;

/// <summary>
/// The folder where <see cref="CheckpointQuantizer"/> keeps every module it has quantized, one small safetensors file
/// each (the module's compressed-tensors parts plus what the config needs), next to a manifest that binds the folder
/// to one input and one set of options.
/// </summary>
/// <remarks>
/// <para>Every file is written through <see cref="AtomicFile"/>, so after a kill each entry is either complete or
/// absent (a hidden <c>.*.tmp</c> may be left; it is deleted on the next run). The manifest holds, for every input
/// file, its length and the SHA-256 of its header bytes, the SHA-256 of config.json, and the canonical plan: every
/// targeted module with its options (the record's text, culture-invariant), whether it is transposed, and the ignore
/// list. A journal whose manifest differs byte for byte is deleted. Each entry also records the SHA-256 of its input
/// tensor's bytes, checked before the entry is reused, so an input edited in place (same header) is never mixed with
/// old results.</para>
/// </remarks>
internal sealed class CheckpointJournal
{
    private const string ManifestName = "manifest.json";
    private const string Prefix = "journal.";
    private const string ModuleKey = Prefix + "module";
    private const string FingerprintKey = Prefix + "fingerprint";
    private const string SourceKey = Prefix + "source_sha256";
    private const string FormatKey = Prefix + "format";
    private const string ArgumentsKey = Prefix + "arguments";
    private const string StorageBitsKey = Prefix + "storage_bits";
    private const string RowsKey = Prefix + "rows";
    private const string ColumnsKey = Prefix + "columns";

    private readonly string _fingerprint;

    private CheckpointJournal(string folder, string fingerprint)
    {
        Folder = folder;
        _fingerprint = fingerprint;
    }

    /// <summary>The journal folder.</summary>
    public string Folder { get; }

    /// <summary>The journal folder of an output folder: hidden, beside it, named after it.</summary>
    public static string FolderFor(string outputFolder)
    {
        string full = Path.GetFullPath(outputFolder).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        string? parent = Path.GetDirectoryName(full);
        if (string.IsNullOrEmpty(parent))
        {
            throw new ArgumentException($"The output folder '{outputFolder}' must have a parent folder (the journal is written beside it).", nameof(outputFolder));
        }

        return Path.Combine(parent, $".{Path.GetFileName(full)}.quantize-journal");
    }

    /// <summary>The manifest bytes for this input and plan (UTF-8 JSON, stable field order).</summary>
    public static byte[] Manifest(SafetensorsCheckpoint checkpoint, byte[] configBytes, IReadOnlyList<(string Module, string Options, bool Transposed)> plan,
        IReadOnlyList<string> ignore)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("version", 1);
            json.WriteString("config_sha256", Convert.ToHexStringLower(SHA256.HashData(configBytes)));
            if (checkpoint.Path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            {
                json.WriteString("index_sha256", Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(checkpoint.Path))));
            }

            json.WriteStartArray("files");
            foreach (SafetensorsFile file in checkpoint.Files)
            {
                json.WriteStartObject();
                json.WriteString("name", Path.GetFileName(file.FilePath));
                json.WriteNumber("length", new FileInfo(file.FilePath).Length);
                json.WriteString("header_sha256", Convert.ToHexStringLower(HeaderHash(file)));
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("ignore");
            foreach (string pattern in ignore)
            {
                json.WriteStringValue(pattern);
            }

            json.WriteEndArray();
            json.WriteStartArray("modules");
            foreach ((string module, string options, bool transposed) in plan)
            {
                json.WriteStartObject();
                json.WriteString("name", module);
                json.WriteString("options", options);
                json.WriteBoolean("transposed", transposed);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// Opens the journal folder for a manifest: reuses it when its manifest is identical (and <paramref name="resume"/>
    /// allows), otherwise deletes it and starts a new one. Leftover temporary files are deleted either way.
    /// </summary>
    /// <returns>The journal, and why an existing one was discarded (null if none was, or none existed).</returns>
    public static (CheckpointJournal Journal, string? Discarded) Open(string folder, byte[] manifest, CheckpointResume resume, Action<string>? log)
    {
        string fingerprint = Convert.ToHexStringLower(SHA256.HashData(manifest));
        string manifestPath = Path.Combine(folder, ManifestName);
        string? discarded = null;
        if (Directory.Exists(folder))
        {
            byte[]? existing = File.Exists(manifestPath) ? File.ReadAllBytes(manifestPath) : null;
            if (resume == CheckpointResume.Never)
            {
                discarded = "resuming is off (CheckpointResume.Never)";
            }
            else if (existing is null)
            {
                discarded = "it has no manifest";
            }
            else if (!existing.AsSpan().SequenceEqual(manifest))
            {
                discarded = "it was written for another input or other options (its manifest differs)";
            }

            if (discarded is not null)
            {
                log?.Invoke($"Discarding the journal '{folder}': {discarded}.");
                Directory.Delete(folder, recursive: true);
            }
            else
            {
                foreach (string temporary in Directory.EnumerateFiles(folder, ".*.tmp"))
                {
                    File.Delete(temporary);
                }

                log?.Invoke($"Resuming from the journal '{folder}'.");
            }
        }

        if (!Directory.Exists(folder))
        {
            Directory.CreateDirectory(folder);
            AtomicFile.Write(manifestPath, stream => stream.Write(manifest));
        }

        return (new CheckpointJournal(folder, fingerprint), discarded);
    }

    /// <summary>The SHA-256 of a tensor's stored bytes, read in chunks from the memory map.</summary>
    public static byte[] SourceHash(SafetensorsCheckpoint checkpoint, SafetensorsTensorInfo info)
    {
        SafetensorsFile file = checkpoint.FileOf(info.Name);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        const int Chunk = 1 << 24;
        for (long offset = 0; offset < info.ByteLength; offset += Chunk)
        {
            hash.AppendData(file.GetBytes(info.Name, offset, (int)Math.Min(Chunk, info.ByteLength - offset)));
        }

        return hash.GetHashAndReset();
    }

    /// <summary>Writes a module's entry atomically and returns it as <see cref="TryRead"/> would.</summary>
    public JournalEntry Write(string module, byte[] sourceHash, EncodedModule encoded, string format, JsonObject arguments, long storageBits, int rows, int columns)
    {
        var writer = new SafetensorsWriter();
        foreach (EncodedTensor t in encoded.Tensors)
        {
            writer.Add(t.Name, t.DType, t.Shape, t.Data);
        }

        foreach ((string key, string value) in encoded.Metadata)
        {
            writer.SetMetadata(key, value);
        }

        writer.SetMetadata(ModuleKey, module);
        writer.SetMetadata(FingerprintKey, _fingerprint);
        writer.SetMetadata(SourceKey, Convert.ToHexStringLower(sourceHash));
        writer.SetMetadata(FormatKey, format);
        writer.SetMetadata(ArgumentsKey, arguments.ToJsonString());
        writer.SetMetadata(StorageBitsKey, storageBits.ToString(CultureInfo.InvariantCulture));
        writer.SetMetadata(RowsKey, rows.ToString(CultureInfo.InvariantCulture));
        writer.SetMetadata(ColumnsKey, columns.ToString(CultureInfo.InvariantCulture));
        string path = PathOf(module);
        writer.Save(path);
        return new JournalEntry(path, format, arguments, storageBits, rows, columns,
            encoded.Tensors.Select(t => (t.Name, t.DType, t.Shape)).ToArray(), encoded.Metadata);
    }

    /// <summary>
    /// Reads a module's entry if one exists, is readable, and was written for this manifest, this module and this
    /// input tensor; null otherwise (a damaged entry is deleted and recomputed).
    /// </summary>
    public JournalEntry? TryRead(string module, byte[] sourceHash)
    {
        string path = PathOf(module);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using SafetensorsFile file = SafetensorsFile.Open(path);
            IReadOnlyDictionary<string, string> metadata = file.Metadata;
            if (metadata.GetValueOrDefault(ModuleKey) != module || metadata.GetValueOrDefault(FingerprintKey) != _fingerprint ||
                metadata.GetValueOrDefault(SourceKey) != Convert.ToHexStringLower(sourceHash) ||
                JsonNode.Parse(metadata[ArgumentsKey]) is not JsonObject arguments)
            {
                File.Delete(path);
                return null;
            }

            return new JournalEntry(path, metadata[FormatKey], arguments,
                long.Parse(metadata[StorageBitsKey], CultureInfo.InvariantCulture),
                int.Parse(metadata[RowsKey], CultureInfo.InvariantCulture),
                int.Parse(metadata[ColumnsKey], CultureInfo.InvariantCulture),
                file.Tensors.Select(t => (t.Name, t.DType, t.Shape.ToArray())).ToArray(),
                metadata.Where(m => !m.Key.StartsWith(Prefix, StringComparison.Ordinal) && m.Key != "format")
                    .ToDictionary(m => m.Key, m => m.Value, StringComparer.Ordinal));
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or KeyNotFoundException or FormatException or OverflowException)
        {
            File.Delete(path);
            return null;
        }
    }

    /// <summary>Deletes the journal folder (after the output is in place).</summary>
    public void Delete() => Directory.Delete(Folder, recursive: true);

    private string PathOf(string module) =>
        Path.Combine(Folder, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(module)))[..32] + ".safetensors");

    private static byte[] HeaderHash(SafetensorsFile file)
    {
        using var stream = new FileStream(file.FilePath, FileMode.Open, FileAccess.Read, FileShare.Read);
        var header = new byte[checked((int)(8 + file.HeaderLength))];
        stream.ReadExactly(header);
        return SHA256.HashData(header);
    }
}

/// <summary>A module read back from the journal: what the output's tensors and config need.</summary>
internal sealed record JournalEntry(string Path, string Format, JsonObject Arguments, long StorageBits, int Rows, int Columns,
    IReadOnlyList<(string Name, SafetensorsDType DType, long[] Shape)> Tensors, IReadOnlyDictionary<string, string> Metadata);
