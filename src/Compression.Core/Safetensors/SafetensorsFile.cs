// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using Compression.Tensors;

namespace Compression.Safetensors;

/// <summary>
/// A safetensors file opened for reading through a memory map, so a checkpoint larger than RAM can be walked tensor by
/// tensor: only the pages of the tensors actually read are brought in.
/// </summary>
/// <remarks>
/// <para>The whole header is validated when the file is opened (see <c>docs/safetensors.md</c>); a corrupt or
/// truncated file gives <see cref="InvalidDataException"/> with the reason, never an out-of-memory error or an
/// access violation.</para>
/// <para>Spans returned by <see cref="GetBytes(string)"/> point into the map and are valid until <see cref="Dispose"/>.
/// Reading from several threads at once is safe; disposing while reading is not.</para>
/// </remarks>
/// <example>
/// <code>
/// using var file = SafetensorsFile.Open("model.safetensors");
/// DenseTensor w = file.ReadDense("model.layers.0.mlp.up_proj.weight");
/// </code>
/// </example>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly Dictionary<string, SafetensorsTensorInfo> _byName;
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _data;
    private readonly long _dataLength;
    private bool _disposed;

    private SafetensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* data, long dataLength,
        List<SafetensorsTensorInfo> tensors, Dictionary<string, string> metadata, long headerLength)
    {
        FilePath = path;
        _map = map;
        _view = view;
        _data = data;
        _dataLength = dataLength;
        Tensors = tensors;
        Metadata = metadata;
        HeaderLength = headerLength;
        _byName = new Dictionary<string, SafetensorsTensorInfo>(tensors.Count, StringComparer.Ordinal);
        foreach (SafetensorsTensorInfo info in tensors)
        {
            _byName.Add(info.Name, info);
        }
    }

    /// <summary>The path the file was opened from.</summary>
    public string FilePath { get; }

    /// <summary>The tensors in header order.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> entries (empty when the header has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The length of the JSON header in bytes (padding included).</summary>
    public long HeaderLength { get; }

    /// <summary>Opens and validates a safetensors file.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid safetensors file; the message says why.</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!BitConverter.IsLittleEndian)
        {
            // Tensors are little-endian on disk and handed out as zero-copy spans.
            throw new PlatformNotSupportedException("Safetensors files can only be read on little-endian machines.");
        }

        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        byte* pointer = null;
        try
        {
            long fileLength = stream.Length;
            if (fileLength < 8)
            {
                ThrowHelper.ThrowInvalidData(path, $"it is {fileLength} bytes long, shorter than the 8-byte header length.");
            }

            Span<byte> prefix = stackalloc byte[8];
            stream.ReadExactly(prefix);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength == 0 || headerLength > SafetensorsHeader.MaxHeaderLength)
            {
                ThrowHelper.ThrowInvalidData(path, $"the header length is {headerLength}; it must lie in [1, {SafetensorsHeader.MaxHeaderLength}].");
            }

            if ((long)headerLength > fileLength - 8)
            {
                ThrowHelper.ThrowInvalidData(path, $"the header length is {headerLength} but only {fileLength - 8} bytes follow (truncated file?).");
            }

            var header = new byte[(int)headerLength];
            stream.ReadExactly(header);
            long dataLength = fileLength - 8 - (long)headerLength;
            (List<SafetensorsTensorInfo> tensors, Dictionary<string, string> metadata) = SafetensorsHeader.Parse(path, header, dataLength);

            if (dataLength > 0)
            {
                map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                    HandleInheritability.None, leaveOpen: false);
                view = map.CreateViewAccessor(0, fileLength, MemoryMappedFileAccess.Read);
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
                pointer += view.PointerOffset + 8 + (long)headerLength;
            }
            else
            {
                stream.Dispose();
            }

            return new SafetensorsFile(path, map, view, pointer, dataLength, tensors, metadata, (long)headerLength);
        }
        catch
        {
            if (pointer != null)
            {
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            }

            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Whether the file holds a tensor of that name.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Looks a tensor up by name.</summary>
    public bool TryGetInfo(string name, out SafetensorsTensorInfo info) => _byName.TryGetValue(name, out info!);

    /// <summary>The header entry of a tensor.</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    public SafetensorsTensorInfo GetInfo(string name) =>
        _byName.TryGetValue(name, out SafetensorsTensorInfo? info)
            ? info
            : throw new KeyNotFoundException($"'{FilePath}' has no tensor named '{name}'.");

    /// <summary>The raw little-endian bytes of a tensor, zero-copy. Valid until <see cref="Dispose"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    /// <exception cref="NotSupportedException">The tensor exceeds 2 GiB; use <see cref="GetBytes(string, long, int)"/>.</exception>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        SafetensorsTensorInfo info = GetInfo(name);
        if (info.ByteLength > int.MaxValue)
        {
            throw new NotSupportedException($"Tensor '{name}' is {info.ByteLength} bytes; read it in slices of at most 2 GiB.");
        }

        return GetBytes(name, 0, (int)info.ByteLength);
    }

    /// <summary>A slice of a tensor's bytes, zero-copy, for tensors larger than one span can hold.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The slice is outside the tensor.</exception>
    public ReadOnlySpan<byte> GetBytes(string name, long offset, int count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        SafetensorsTensorInfo info = GetInfo(name);
        if (offset < 0 || count < 0 || offset > info.ByteLength - count)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"Slice [{offset}, {offset}+{count}) is outside tensor '{name}' of {info.ByteLength} bytes.");
        }

        return count == 0 ? ReadOnlySpan<byte>.Empty : new ReadOnlySpan<byte>(_data + info.DataBegin + offset, count);
    }

    /// <summary>Copies a tensor's raw bytes to a stream, in bounded chunks.</summary>
    public void CopyTo(string name, Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        SafetensorsTensorInfo info = GetInfo(name);
        const int Chunk = 1 << 24;
        for (long offset = 0; offset < info.ByteLength; offset += Chunk)
        {
            destination.Write(GetBytes(name, offset, (int)Math.Min(Chunk, info.ByteLength - offset)));
        }
    }

    /// <summary>Reads a tensor as float32, converting from its stored dtype (exactly, for every floating dtype).</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    /// <exception cref="NotSupportedException">A dimension exceeds <see cref="int.MaxValue"/> or the element count
    /// exceeds <see cref="Array.MaxLength"/> (a valid file may hold such a tensor, e.g. of shape [0, 3000000000]); read
    /// it with <see cref="GetBytes(string, long, int)"/>.</exception>
    public DenseTensor ReadDense(string name)
    {
        SafetensorsTensorInfo info = GetInfo(name);
        var tensor = new DenseTensor(info.GetInt32Shape());
        ReadDense(name, tensor.Span);
        return tensor;
    }

    /// <summary>Reads a tensor as float32 into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> length differs from the element count.</exception>
    public void ReadDense(string name, Span<float> destination)
    {
        SafetensorsTensorInfo info = GetInfo(name);
        if (destination.Length != info.ElementCount)
        {
            ThrowHelper.ThrowArgument(nameof(destination), $"Tensor '{name}' has {info.ElementCount} elements; destination has {destination.Length}.");
        }

        ConvertToSingle(info.DType, GetBytes(name), destination);
    }

    /// <summary>Converts raw little-endian bytes of <paramref name="dtype"/> to float32.</summary>
    internal static void ConvertToSingle(SafetensorsDType dtype, ReadOnlySpan<byte> bytes, Span<float> destination)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32: MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination); break;
            case SafetensorsDType.F16: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), destination); break;
            case SafetensorsDType.BF16: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, BFloat16>(bytes), destination); break;
            case SafetensorsDType.F64: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, double>(bytes), destination); break;
            case SafetensorsDType.F8_E4M3: NumericConversions.ConvertFloat8E4M3ToSingle(bytes, destination); break;
            case SafetensorsDType.F8_E5M2: NumericConversions.ConvertFloat8E5M2ToSingle(bytes, destination); break;
            case SafetensorsDType.I8: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, sbyte>(bytes), destination); break;
            case SafetensorsDType.U8:
            case SafetensorsDType.BOOL: NumericConversions.ConvertToSingle(bytes, destination); break;
            case SafetensorsDType.I16: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, short>(bytes), destination); break;
            case SafetensorsDType.U16: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, ushort>(bytes), destination); break;
            case SafetensorsDType.I32: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, int>(bytes), destination); break;
            case SafetensorsDType.U32: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, uint>(bytes), destination); break;
            case SafetensorsDType.I64: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, long>(bytes), destination); break;
            case SafetensorsDType.U64: NumericConversions.ConvertToSingle(MemoryMarshal.Cast<byte, ulong>(bytes), destination); break;
            default: throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype.");
        }
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }

        _map?.Dispose();
    }
}
