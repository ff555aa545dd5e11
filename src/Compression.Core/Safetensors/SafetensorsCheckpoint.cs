// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Compression.Tensors;

namespace Compression.Safetensors;

/// <summary>
/// A checkpoint as Hugging Face stores it: one <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c>. Presents all tensors under one name space.
/// </summary>
/// <remarks>Every shard is opened (memory-mapped) and validated up front, and every tensor the index names must be
/// present in the shard it names; a broken checkpoint fails at <see cref="Open"/>, not half-way through a run.</remarks>
public sealed class SafetensorsCheckpoint : IDisposable
{
    /// <summary>The index file name of a sharded Hugging Face checkpoint.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>The file name of a single-file Hugging Face checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _fileByTensor;

    private SafetensorsCheckpoint(string path, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> fileByTensor,
        IReadOnlyList<SafetensorsTensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _files = files;
        _fileByTensor = fileByTensor;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file or folder the checkpoint was opened from.</summary>
    public string Path { get; }

    /// <summary>All tensors, shard by shard in header order.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>Metadata: the single file's <c>__metadata__</c>, or the index's <c>metadata</c> object (values as text).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The shard files, opened.</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>
    /// Opens a checkpoint from a folder (its index if present, else <c>model.safetensors</c>, else its only
    /// <c>.safetensors</c> file), an index <c>.json</c> file, or a <c>.safetensors</c> file.
    /// </summary>
    /// <exception cref="FileNotFoundException">The path, or a shard the index names, does not exist.</exception>
    /// <exception cref="InvalidDataException">A file or the index is corrupt, or a tensor is missing from its shard.</exception>
    public static SafetensorsCheckpoint Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            string index = System.IO.Path.Combine(path, IndexFileName);
            if (File.Exists(index))
            {
                return OpenIndex(index);
            }

            string single = System.IO.Path.Combine(path, SingleFileName);
            if (File.Exists(single))
            {
                return OpenSingle(single);
            }

            string[] candidates = Directory.GetFiles(path, "*.safetensors");
            return candidates.Length == 1
                ? OpenSingle(candidates[0])
                : throw new FileNotFoundException(
                    $"Folder '{path}' has neither {IndexFileName} nor {SingleFileName}, and {candidates.Length} other .safetensors files.",
                    System.IO.Path.Combine(path, SingleFileName));
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path);
        }

        return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(path) : OpenSingle(path);
    }

    /// <summary>Whether the checkpoint holds a tensor of that name.</summary>
    public bool Contains(string name) => _fileByTensor.ContainsKey(name);

    /// <summary>The header entry of a tensor (offsets relative to its shard's data section).</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    public SafetensorsTensorInfo GetInfo(string name) => FileOf(name).GetInfo(name);

    /// <summary>The shard that holds a tensor.</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    public SafetensorsFile FileOf(string name) =>
        _fileByTensor.TryGetValue(name, out SafetensorsFile? file)
            ? file
            : throw new KeyNotFoundException($"Checkpoint '{Path}' has no tensor named '{name}'.");

    /// <summary>The raw bytes of a tensor, zero-copy; valid until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<byte> GetBytes(string name) => FileOf(name).GetBytes(name);

    /// <summary>Reads a tensor as float32.</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    /// <exception cref="NotSupportedException">Its dimensions do not fit a <see cref="DenseTensor"/> (see
    /// <see cref="SafetensorsFile.ReadDense(string)"/>).</exception>
    public DenseTensor ReadDense(string name) => FileOf(name).ReadDense(name);

    /// <summary>Closes every shard.</summary>
    public void Dispose()
    {
        foreach (SafetensorsFile file in _files)
        {
            file.Dispose();
        }
    }

    private static SafetensorsCheckpoint OpenSingle(string file)
    {
        SafetensorsFile opened = SafetensorsFile.Open(file);
        var map = opened.Tensors.ToDictionary(t => t.Name, _ => opened, StringComparer.Ordinal);
        return new SafetensorsCheckpoint(file, [opened], map, opened.Tensors, opened.Metadata);
    }

    private static SafetensorsCheckpoint OpenIndex(string indexPath)
    {
        (Dictionary<string, string> weightMap, Dictionary<string, string> metadata) = ReadIndex(indexPath);
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var files = new List<SafetensorsFile>();
        var byName = new Dictionary<string, SafetensorsFile>(StringComparer.OrdinalIgnoreCase);
        var fileByTensor = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (string shardName in weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                string shardPath = System.IO.Path.Combine(directory, shardName);
                if (!File.Exists(shardPath))
                {
                    throw new FileNotFoundException($"Index '{indexPath}' names shard '{shardName}', which does not exist.", shardPath);
                }

                SafetensorsFile shard = SafetensorsFile.Open(shardPath);
                files.Add(shard);
                byName[shardName] = shard;
            }

            foreach ((string tensor, string shardName) in weightMap)
            {
                SafetensorsFile shard = byName[shardName];
                if (!shard.Contains(tensor))
                {
                    throw new InvalidDataException($"Index '{indexPath}' places tensor '{tensor}' in '{shardName}', which does not hold it.");
                }

                fileByTensor[tensor] = shard;
            }
        }
        catch
        {
            foreach (SafetensorsFile file in files)
            {
                file.Dispose();
            }

            throw;
        }

        // Only what the index names is part of the checkpoint; a shard may carry extra tensors that it ignores.
        var tensors = files.SelectMany(f => f.Tensors.Where(t => fileByTensor.TryGetValue(t.Name, out SafetensorsFile? owner) &&
            ReferenceEquals(owner, f))).ToList();
        return new SafetensorsCheckpoint(indexPath, files, fileByTensor, tensors, metadata);
    }

    private static (Dictionary<string, string> WeightMap, Dictionary<string, string> Metadata) ReadIndex(string indexPath)
    {
        var info = new FileInfo(indexPath);
        if (info.Length > SafetensorsHeader.MaxHeaderLength)
        {
            throw new InvalidDataException($"Index '{indexPath}' is {info.Length} bytes; at most {SafetensorsHeader.MaxHeaderLength} are accepted.");
        }

        byte[] bytes = File.ReadAllBytes(indexPath);
        // JsonDocument checks a string's UTF-8 only when the string is read, and then throws InvalidOperationException
        // (found by fuzzing: a damaged byte inside a shard name); check all of it first, as the header parser does.
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            throw new InvalidDataException($"Index '{indexPath}' is not valid UTF-8.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Index '{indexPath}' is not well-formed JSON ({e.Message}).", e);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object ||
                !root.TryGetProperty("weight_map", out JsonElement weightMapElement) ||
                weightMapElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"Index '{indexPath}' has no \"weight_map\" object.");
            }

            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty entry in weightMapElement.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                {
                    throw new InvalidDataException($"Index '{indexPath}' maps '{entry.Name}' to a JSON {entry.Value.ValueKind}, not a file name.");
                }

                string file = entry.Value.GetString()!;
                // Shards must sit beside the index: a name with a directory part could reach any file on the machine.
                if (file.Length == 0 || file != System.IO.Path.GetFileName(file) || file is "." or ".." ||
                    file.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) >= 0)
                {
                    throw new InvalidDataException($"Index '{indexPath}' maps '{entry.Name}' to '{file}', which is not a plain file name beside the index.");
                }

                if (!weightMap.TryAdd(entry.Name, file))
                {
                    throw new InvalidDataException($"Index '{indexPath}' maps tensor '{entry.Name}' twice.");
                }
            }

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty("metadata", out JsonElement metadataElement) && metadataElement.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty entry in metadataElement.EnumerateObject())
                {
                    metadata[entry.Name] = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : entry.Value.GetRawText();
                }
            }

            return (weightMap, metadata);
        }
    }
}
