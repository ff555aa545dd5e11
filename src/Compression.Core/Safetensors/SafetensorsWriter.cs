// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Compression.Tensors;

namespace Compression.Safetensors;

/// <summary>
/// Collects tensors and writes them as one safetensors file, or as shards with a <c>model.safetensors.index.json</c>.
/// Every file is written to a temporary file and renamed into place, so an interrupted save never leaves a partial
/// file under the target name.
/// </summary>
/// <remarks>
/// Tensors are written in the order they were added. Data can be given up front (<see cref="Add(string, SafetensorsDType, long[], ReadOnlyMemory{byte})"/>)
/// or produced while writing (<see cref="AddDeferred"/>), so a checkpoint larger than memory can be written one
/// tensor at a time. The header is padded with spaces to a multiple of 8 bytes so the data section is aligned.
/// </remarks>
/// <example>
/// <code>
/// var writer = new SafetensorsWriter();
/// writer.SetMetadata("format", "pt");
/// writer.Add("weight", weightTensor);                       // F32
/// writer.Add("weight_bf16", weightTensor, SafetensorsDType.BF16);
/// writer.Save("out/model.safetensors");
/// </code>
/// </example>
public sealed class SafetensorsWriter
{
    private readonly List<Entry> _entries = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);

    /// <summary>The tensors added so far, in order, with offsets as they will be written to a single file.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors
    {
        get
        {
            long offset = 0;
            var result = new List<SafetensorsTensorInfo>(_entries.Count);
            foreach (Entry entry in _entries)
            {
                result.Add(new SafetensorsTensorInfo(entry.Name, entry.DType, entry.Shape, offset, offset + entry.ByteLength));
                offset += entry.ByteLength;
            }

            return result;
        }
    }

    /// <summary>The <c>__metadata__</c> entries to write.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    /// <summary>Sets one <c>__metadata__</c> entry.</summary>
    public void SetMetadata(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        _metadata[key] = value;
    }

    /// <summary>Adds a tensor from raw little-endian bytes.</summary>
    /// <exception cref="ArgumentException">The name is empty, reserved or already used, a dimension is negative, or
    /// the byte count does not match dtype × shape.</exception>
    public void Add(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<byte> data)
    {
        long byteLength = Validate(name, dtype, shape);
        if (data.Length != byteLength)
        {
            ThrowHelper.ThrowArgument(nameof(data),
                $"Tensor '{name}' is {dtype} of shape [{string.Join(", ", shape)}], {byteLength} bytes, but {data.Length} bytes were given.");
        }

        Register(new Entry(name, dtype, shape.ToArray(), byteLength, stream => stream.Write(data.Span)));
    }

    /// <summary>Adds a tensor of unmanaged elements (e.g. <see cref="float"/>, <see cref="Half"/>, <see cref="BFloat16"/>, <see cref="int"/>).</summary>
    /// <exception cref="ArgumentException">The element size differs from the dtype's, or the count does not match the shape.</exception>
    public void Add<T>(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<T> data)
        where T : unmanaged
    {
        if (Marshal.SizeOf<T>() != dtype.ElementSize())
        {
            ThrowHelper.ThrowArgument(nameof(data), $"{typeof(T).Name} elements are {Marshal.SizeOf<T>()} bytes; {dtype} needs {dtype.ElementSize()}.");
        }

        long byteLength = Validate(name, dtype, shape);
        if ((long)data.Length * dtype.ElementSize() != byteLength)
        {
            ThrowHelper.ThrowArgument(nameof(data),
                $"Tensor '{name}' of shape [{string.Join(", ", shape)}] has {byteLength / dtype.ElementSize()} elements but {data.Length} were given.");
        }

        Register(new Entry(name, dtype, shape.ToArray(), byteLength, stream => stream.Write(MemoryMarshal.AsBytes(data.Span))));
    }

    /// <summary>Adds a float32 tensor, stored as F32.</summary>
    public void Add(string name, DenseTensor tensor) => Add(name, tensor, SafetensorsDType.F32);

    /// <summary>Adds a float32 tensor, stored as F32, F16 or BF16 (narrowing rounds to nearest, ties to even).</summary>
    /// <exception cref="ArgumentException"><paramref name="storeAs"/> is not F32, F16 or BF16.</exception>
    public void Add(string name, DenseTensor tensor, SafetensorsDType storeAs)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        long[] shape = tensor.Shape.ToArray().Select(d => (long)d).ToArray();
        long byteLength = Validate(name, storeAs, shape);
        Action<Stream> write = storeAs switch
        {
            SafetensorsDType.F32 => stream => stream.Write(MemoryMarshal.AsBytes(tensor.Span)),
            SafetensorsDType.F16 => stream => WriteConverted<Half>(stream, tensor, static (s, d) => NumericConversions.ConvertToHalf(s, d)),
            SafetensorsDType.BF16 => stream => WriteConverted<BFloat16>(stream, tensor, static (s, d) => NumericConversions.ConvertToBFloat16(s, d)),
            _ => throw new ArgumentException($"A float32 tensor can be stored as F32, F16 or BF16, not {storeAs}.", nameof(storeAs)),
        };
        Register(new Entry(name, storeAs, shape, byteLength, write));
    }

    /// <summary>Adds a tensor whose bytes are produced while the file is written (streaming large checkpoints).</summary>
    /// <param name="name">The tensor name.</param>
    /// <param name="dtype">The element type.</param>
    /// <param name="shape">The dimensions.</param>
    /// <param name="writeData">Writes exactly dtype × shape bytes; called once per save.</param>
    /// <exception cref="InvalidDataException">At save time, <paramref name="writeData"/> wrote a different number of bytes.</exception>
    public void AddDeferred(string name, SafetensorsDType dtype, long[] shape, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        long byteLength = Validate(name, dtype, shape);
        Register(new Entry(name, dtype, shape.ToArray(), byteLength, writeData));
    }

    /// <summary>Writes one safetensors file atomically (temporary file, then rename).</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        AtomicFile.Write(path, stream => WriteTo(stream));
    }

    /// <summary>Writes the safetensors bytes to a stream.</summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        WriteFile(stream, _entries, _metadata);
    }

    /// <summary>
    /// Writes shards of at most <paramref name="maxShardBytes"/> data bytes each (a larger tensor gets a shard of its
    /// own), named <c>{baseName}-00001-of-0000N.safetensors</c>, plus <c>{baseName}.safetensors.index.json</c> mapping
    /// every tensor to its shard, as Hugging Face checkpoints do. Every file is first written completely under a hidden
    /// temporary name, then all are renamed back to back, the index last; shards of an earlier save into the same
    /// folder under the same base name that the new index does not name are deleted afterwards.
    /// </summary>
    /// <returns>The path of the index file.</returns>
    public string SaveSharded(string directory, long maxShardBytes, string baseName = "model")
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(baseName);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);

        var shards = new List<List<Entry>>();
        long current = 0;
        foreach (Entry entry in _entries)
        {
            if (shards.Count == 0 || (current > 0 && current + entry.ByteLength > maxShardBytes))
            {
                shards.Add([]);
                current = 0;
            }

            shards[^1].Add(entry);
            current += entry.ByteLength;
        }

        if (shards.Count == 0)
        {
            shards.Add([]);
        }

        // Every shard and the index are written completely under hidden temporary names first, then renamed back to
        // back, the index last: a killed save leaves the previous checkpoint (or, within the gap between renames, new
        // shards the old index does not name). Shards of an earlier save with another shard count are deleted once the
        // new index is in place.
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var prepared = new List<PreparedAtomicFile>(shards.Count + 1);
        var fileNames = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            Directory.CreateDirectory(directory);
            for (int i = 0; i < shards.Count; i++)
            {
                string fileName = string.Create(CultureInfo.InvariantCulture, $"{baseName}-{i + 1:D5}-of-{shards.Count:D5}.safetensors");
                List<Entry> shard = shards[i];
                prepared.Add(AtomicFile.Prepare(Path.Combine(directory, fileName), stream => WriteFile(stream, shard, _metadata)));
                fileNames.Add(fileName);
                foreach (Entry entry in shard)
                {
                    weightMap[entry.Name] = fileName;
                }
            }

            string indexPath = Path.Combine(directory, $"{baseName}.safetensors.index.json");
            prepared.Add(AtomicFile.Prepare(indexPath, stream => WriteIndex(stream, weightMap)));
            foreach (PreparedAtomicFile file in prepared)
            {
                file.Commit();
            }

            foreach (string stale in Directory.EnumerateFiles(directory, $"{baseName}-*-of-*.safetensors"))
            {
                if (!fileNames.Contains(Path.GetFileName(stale)))
                {
                    File.Delete(stale);
                }
            }

            return indexPath;
        }
        finally
        {
            foreach (PreparedAtomicFile file in prepared)
            {
                file.Dispose();
            }
        }
    }

    private void WriteIndex(Stream stream, SortedDictionary<string, string> weightMap)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteStartObject("metadata");
        json.WriteNumber("total_size", _entries.Sum(e => e.ByteLength));
        foreach ((string key, string value) in _metadata)
        {
            json.WriteString(key, value);
        }

        json.WriteEndObject();
        json.WriteStartObject("weight_map");
        foreach ((string name, string file) in weightMap)
        {
            json.WriteString(name, file);
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteFile(Stream stream, List<Entry> entries, Dictionary<string, string> metadata)
    {
        byte[] header = BuildHeader(entries, metadata);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (Entry entry in entries)
        {
            long before = stream.CanSeek ? stream.Position : -1;
            entry.Write(stream);
            if (before >= 0 && stream.Position - before != entry.ByteLength)
            {
                throw new InvalidDataException(
                    $"Tensor '{entry.Name}' should have written {entry.ByteLength} bytes but wrote {stream.Position - before}.");
            }
        }
    }

    private static byte[] BuildHeader(List<Entry> entries, Dictionary<string, string> metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject(SafetensorsHeader.MetadataKey);
                foreach ((string key, string value) in metadata)
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            long offset = 0;
            foreach (Entry entry in entries)
            {
                json.WriteStartObject(entry.Name);
                json.WriteString("dtype", entry.DType.ToHeaderName());
                json.WriteStartArray("shape");
                foreach (long dimension in entry.Shape)
                {
                    json.WriteNumberValue(dimension);
                }

                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + entry.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += entry.ByteLength;
            }

            json.WriteEndObject();
        }

        // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
        int padding = (int)((8 - (buffer.Length % 8)) % 8);
        for (int i = 0; i < padding; i++)
        {
            buffer.WriteByte((byte)' ');
        }

        return buffer.ToArray();
    }

    private static void WriteConverted<T>(Stream stream, DenseTensor tensor, SpanConverter<T> convert)
        where T : unmanaged
    {
        const int Chunk = 1 << 16;
        var scratch = new T[Math.Min(Chunk, Math.Max(tensor.Length, 1))];
        ReadOnlySpan<float> source = tensor.Span;
        for (int offset = 0; offset < source.Length; offset += Chunk)
        {
            int count = Math.Min(Chunk, source.Length - offset);
            convert(source.Slice(offset, count), scratch.AsSpan(0, count));
            stream.Write(MemoryMarshal.AsBytes(scratch.AsSpan(0, count)));
        }
    }

    private long Validate(string name, SafetensorsDType dtype, long[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (name == SafetensorsHeader.MetadataKey)
        {
            ThrowHelper.ThrowArgument(nameof(name), $"'{SafetensorsHeader.MetadataKey}' is reserved for metadata.");
        }

        if (_names.Contains(name))
        {
            ThrowHelper.ThrowArgument(nameof(name), $"A tensor named '{name}' was already added.");
        }

        if (!Enum.IsDefined(dtype))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(dtype), dtype, "Unknown safetensors dtype.");
        }

        long bytes = dtype.ElementSize();
        foreach (long dimension in shape)
        {
            if (dimension < 0)
            {
                ThrowHelper.ThrowArgument(nameof(shape), $"Tensor '{name}' has a negative dimension in [{string.Join(", ", shape)}].");
            }

            if (dimension != 0 && bytes > long.MaxValue / dimension)
            {
                ThrowHelper.ThrowArgument(nameof(shape), $"Tensor '{name}' of shape [{string.Join(", ", shape)}] exceeds {long.MaxValue} bytes.");
            }

            bytes *= dimension;
        }

        return bytes;
    }

    private void Register(Entry entry)
    {
        _names.Add(entry.Name);
        _entries.Add(entry);
    }

    private delegate void SpanConverter<T>(ReadOnlySpan<float> source, Span<T> destination);

    private sealed record Entry(string Name, SafetensorsDType DType, long[] Shape, long ByteLength, Action<Stream> Write);
}
