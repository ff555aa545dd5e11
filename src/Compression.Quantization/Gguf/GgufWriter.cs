// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using Compression.Safetensors;

namespace Compression.Quantization.Gguf;

/// <summary>
/// Writes a GGUF version 3 file (the llama.cpp / ggml model format): the header (magic <c>GGUF</c>, version, tensor
/// count, metadata count), the metadata key–value pairs, the tensor infos, then the tensor data, each tensor starting
/// at a multiple of the alignment.
/// </summary>
/// <remarks>
/// <para>Layout, all little-endian: <c>"GGUF"</c>, uint32 version 3, uint64 tensor count, uint64 metadata count; each
/// pair is a string key (uint64 byte count + UTF-8), a uint32 type tag and the value; each tensor info is its name, a
/// uint32 dimension count, the uint64 dimensions innermost first (ggml's <c>ne</c>: a [rows, columns] matrix is stored
/// as <c>ne = [columns, rows]</c>), the uint32 ggml type and the uint64 offset of its data from the start of the data
/// section. The data section starts at the first multiple of the alignment after the infos; each tensor is padded with
/// zeros to a multiple of the alignment.</para>
/// <para>The alignment is <c>general.alignment</c> (default 32, what readers assume when the key is absent); a
/// different alignment given to the constructor is recorded under that key. Metadata keys and tensor names are kept in
/// the order added.</para>
/// </remarks>
/// <example>
/// <code>
/// var writer = new GgufWriter();
/// writer.SetMetadata("general.architecture", GgufValue.String("llama"));
/// writer.AddTensor("output_norm.weight", GgmlType.F32, [128], GgmlQuantization.Quantize(norm, GgmlType.F32));
/// writer.Save("model.gguf");
/// </code>
/// </example>
public sealed class GgufWriter
{
    /// <summary>The file's first four bytes.</summary>
    public static ReadOnlySpan<byte> Magic => "GGUF"u8;

    /// <summary>The GGUF version written.</summary>
    public const uint Version = 3;

    /// <summary>The alignment readers assume without <c>general.alignment</c>.</summary>
    public const uint DefaultAlignment = 32;

    /// <summary>The key that records a non-default alignment.</summary>
    public const string AlignmentKey = "general.alignment";

    /// <summary>The longest tensor name ggml accepts, in UTF-8 bytes (<c>GGML_MAX_NAME</c> − 1 for the terminator).</summary>
    public const int MaxTensorNameBytes = 63;

    private readonly List<(string Key, GgufValue Value)> _metadata = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<TensorEntry> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Creates a writer.</summary>
    /// <param name="alignment">Data alignment in bytes: a power of two, at least 8 (ggml maps tensors in place and reads
    /// them with 8-byte loads).</param>
    /// <exception cref="ArgumentOutOfRangeException">The alignment is not a power of two of at least 8.</exception>
    public GgufWriter(uint alignment = DefaultAlignment)
    {
        if (alignment < 8 || (alignment & (alignment - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "The alignment must be a power of two of at least 8.");
        }

        Alignment = alignment;
        if (alignment != DefaultAlignment)
        {
            SetMetadata(AlignmentKey, GgufValue.UInt32(alignment));
        }
    }

    /// <summary>The data alignment in bytes.</summary>
    public uint Alignment { get; }

    /// <summary>The metadata keys, in the order added.</summary>
    public IReadOnlyList<string> MetadataKeys => _metadata.Select(m => m.Key).ToArray();

    /// <summary>The tensor names, in the order added.</summary>
    public IReadOnlyList<string> TensorNames => _tensors.Select(t => t.Name).ToArray();

    /// <summary>Adds a metadata pair.</summary>
    /// <param name="key">A non-empty key of at most 65,535 UTF-8 bytes, not yet used (GGUF keys are unique). The
    /// alignment key is set by the constructor.</param>
    /// <param name="value">The value.</param>
    /// <exception cref="ArgumentException">The key is empty, too long, already set, or is <c>general.alignment</c>
    /// with a value other than this writer's alignment as uint32.</exception>
    public void SetMetadata(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (Encoding.UTF8.GetByteCount(key) > ushort.MaxValue)
        {
            throw new ArgumentException($"The key '{key[..32]}…' is longer than 65,535 bytes.", nameof(key));
        }

        if (key == AlignmentKey && !(value.Type == GgufValueType.UInt32 && (uint)value.Value == Alignment))
        {
            throw new ArgumentException($"'{AlignmentKey}' must be the uint32 {Alignment} given to the constructor.", nameof(value));
        }

        if (!_keys.Add(key))
        {
            if (key == AlignmentKey)
            {
                return;     // the same alignment again: already recorded
            }

            throw new ArgumentException($"The metadata key '{key}' is already set.", nameof(key));
        }

        _metadata.Add((key, value));
    }

    /// <summary>Adds a tensor with its encoded bytes.</summary>
    /// <param name="name">A unique name of at most 63 UTF-8 bytes.</param>
    /// <param name="type">Its ggml type.</param>
    /// <param name="shape">Its shape, outermost first ([rows, columns] for a matrix), 1 to 4 positive dimensions; the
    /// innermost must be a whole number of the type's blocks.</param>
    /// <param name="data">Its bytes: <see cref="GgmlQuantization.ByteCount"/> of the element count.</param>
    /// <exception cref="ArgumentException">A rule above is broken.</exception>
    public void AddTensor(string name, GgmlType type, IReadOnlyList<long> shape, ReadOnlyMemory<byte> data)
    {
        long bytes = ValidateTensor(name, type, shape);
        if (data.Length != bytes)
        {
            throw new ArgumentException($"'{name}' ({type}, [{string.Join(", ", shape)}]) takes {bytes} bytes, not {data.Length}.", nameof(data));
        }

        _names.Add(name);
        _tensors.Add(new TensorEntry(name, type, shape.ToArray(), bytes, stream => stream.Write(data.Span)));
    }

    /// <summary>Adds a tensor whose bytes are produced when the file is written (the byte count is checked then).</summary>
    /// <exception cref="ArgumentException">The name, type or shape breaks a rule of <see cref="AddTensor(string, GgmlType, IReadOnlyList{long}, ReadOnlyMemory{byte})"/>.</exception>
    public void AddTensor(string name, GgmlType type, IReadOnlyList<long> shape, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        long bytes = ValidateTensor(name, type, shape);
        _names.Add(name);
        _tensors.Add(new TensorEntry(name, type, shape.ToArray(), bytes, writeData));
    }

    /// <summary>Writes the whole file to <paramref name="stream"/>.</summary>
    /// <param name="stream">A writable stream; it is not closed.</param>
    /// <param name="cancellationToken">Checked before each tensor's data.</param>
    /// <exception cref="InvalidDataException">A deferred tensor wrote a different number of bytes than its shape needs.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public void WriteTo(Stream stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var counter = new CountingStream(stream);
        using var writer = new BinaryWriter(counter, Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(Version);
        writer.Write((ulong)_tensors.Count);
        writer.Write((ulong)_metadata.Count);
        foreach ((string key, GgufValue value) in _metadata)
        {
            GgufValue.WriteString(writer, key);
            writer.Write((uint)value.Type);
            value.WriteTo(writer);
        }

        long offset = 0;
        foreach (TensorEntry tensor in _tensors)
        {
            GgufValue.WriteString(writer, tensor.Name);
            writer.Write((uint)tensor.Shape.Length);
            for (int i = tensor.Shape.Length - 1; i >= 0; i--)
            {
                writer.Write((ulong)tensor.Shape[i]);
            }

            writer.Write((uint)tensor.Type);
            writer.Write((ulong)offset);
            offset += Padded(tensor.Bytes);
        }

        writer.Flush();
        WritePadding(counter, counter.Written);
        foreach (TensorEntry tensor in _tensors)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long start = counter.Written;
            tensor.Write(counter);
            long written = counter.Written - start;
            if (written != tensor.Bytes)
            {
                throw new InvalidDataException($"'{tensor.Name}' wrote {written} bytes; its type and shape need {tensor.Bytes}.");
            }

            WritePadding(counter, tensor.Bytes);
        }
    }

    /// <summary>Writes the file to <paramref name="path"/> atomically: a hidden temporary file beside it, flushed, then
    /// renamed over it, so the path holds the old file or the complete new one, never a partial one.</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled; the target is untouched.</exception>
    public void Save(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        AtomicFile.Write(path, stream => WriteTo(stream, cancellationToken));
    }

    private long Padded(long bytes) => (bytes + Alignment - 1) / Alignment * Alignment;

    private void WritePadding(Stream stream, long bytes)
    {
        int padding = (int)(Padded(bytes) - bytes);
        Span<byte> zeros = padding <= 256 ? stackalloc byte[padding] : new byte[padding];
        zeros.Clear();
        stream.Write(zeros);
    }

    private long ValidateTensor(string name, GgmlType type, IReadOnlyList<long> shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (Encoding.UTF8.GetByteCount(name) > MaxTensorNameBytes)
        {
            throw new ArgumentException($"The tensor name '{name}' is longer than {MaxTensorNameBytes} bytes, ggml's limit.", nameof(name));
        }

        if (!Enum.IsDefined(type))
        {
            throw new ArgumentException($"{(int)type} is not a supported ggml type.", nameof(type));
        }

        if (shape.Count is < 1 or > 4 || shape.Any(d => d <= 0))
        {
            throw new ArgumentException($"'{name}': a ggml tensor has 1 to 4 positive dimensions, not [{string.Join(", ", shape)}].", nameof(shape));
        }

        if (shape[^1] % GgmlQuantization.BlockSize(type) != 0)
        {
            throw new ArgumentException($"'{name}': rows of {shape[^1]} values are not a whole number of {type} blocks of {GgmlQuantization.BlockSize(type)}.", nameof(shape));
        }

        if (_names.Contains(name))
        {
            throw new ArgumentException($"The tensor '{name}' was added twice.", nameof(name));
        }

        long count = 1;
        foreach (long d in shape)
        {
            count = checked(count * d);
        }

        return GgmlQuantization.ByteCount(type, count);
    }

    private sealed record TensorEntry(string Name, GgmlType Type, long[] Shape, long Bytes, Action<Stream> Write);

    /// <summary>Counts the bytes written through it, so that deferred tensors' sizes are checked on any stream.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => Written; set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Written += buffer.Length;
        }
    }
}
