// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text;

namespace Compression.Quantization.Tests.Gguf;

/// <summary>
/// A GGUF v3 reader written from the specification alone (no code shared with <c>GgufWriter</c>): byte by byte, every
/// length and offset checked against the file size, so that the tests read what a third-party loader would read.
/// </summary>
internal sealed class GgufTestReader
{
    public sealed record TensorInfo(string Name, ulong[] Ne, uint Type, ulong Offset)
    {
        /// <summary>The shape outermost first (ne reversed).</summary>
        public long[] Shape => Ne.Reverse().Select(d => (long)d).ToArray();

        public long Elements => Ne.Aggregate(1L, (a, d) => a * (long)d);
    }

    public uint Version { get; private set; }

    public Dictionary<string, (uint Type, object Value)> Metadata { get; } = new(StringComparer.Ordinal);

    public List<string> KeyOrder { get; } = [];

    public List<TensorInfo> Tensors { get; } = [];

    public long DataStart { get; private set; }

    public uint Alignment { get; private set; } = 32;

    public byte[] Bytes { get; private init; } = [];

    private int _position;

    public static GgufTestReader Read(byte[] bytes)
    {
        var reader = new GgufTestReader { Bytes = bytes };
        if (bytes.Length < 4 || bytes[0] != (byte)'G' || bytes[1] != (byte)'G' || bytes[2] != (byte)'U' || bytes[3] != (byte)'F')
        {
            throw new InvalidDataException("no GGUF magic");
        }

        reader._position = 4;
        reader.Version = reader.U32();
        if (reader.Version != 3)
        {
            throw new InvalidDataException($"version {reader.Version}");
        }

        ulong tensors = reader.U64(), pairs = reader.U64();
        if (tensors > (ulong)bytes.Length || pairs > (ulong)bytes.Length)
        {
            throw new InvalidDataException("counts beyond the file");
        }

        GgufTestReader result = reader;
        for (ulong i = 0; i < pairs; i++)
        {
            string key = result.Str();
            uint type = result.U32();
            if (!result.Metadata.TryAdd(key, (type, result.Value(type, depth: 0))))
            {
                throw new InvalidDataException($"duplicate key {key}");
            }

            result.KeyOrder.Add(key);
        }

        if (result.Metadata.TryGetValue("general.alignment", out var alignment))
        {
            result.Alignment = alignment.Type == 4 ? (uint)alignment.Value : throw new InvalidDataException("alignment is not uint32");
        }

        for (ulong i = 0; i < tensors; i++)
        {
            string name = result.Str();
            uint dims = result.U32();
            if (dims is 0 or > 4)
            {
                throw new InvalidDataException($"{name}: {dims} dims");
            }

            var ne = new ulong[dims];
            for (int d = 0; d < dims; d++)
            {
                ne[d] = result.U64();
            }

            result.Tensors.Add(new TensorInfo(name, ne, result.U32(), result.U64()));
        }

        long start = result._position;
        result.DataStart = (start + result.Alignment - 1) / result.Alignment * result.Alignment;
        foreach (TensorInfo t in result.Tensors)
        {
            if (t.Offset % result.Alignment != 0 || result.DataStart + (long)t.Offset + ByteSize(t) > bytes.Length)
            {
                throw new InvalidDataException($"{t.Name}: offset {t.Offset} misaligned or beyond the file");
            }
        }

        return result;
    }

    /// <summary>Bytes of a tensor from ggml's block table (independent of the library's).</summary>
    public static long ByteSize(TensorInfo t) => t.Type switch
    {
        0 => t.Elements * 4,
        1 => t.Elements * 2,
        2 => t.Elements / 32 * 18,
        3 => t.Elements / 32 * 20,
        6 => t.Elements / 32 * 22,
        8 => t.Elements / 32 * 34,
        _ => throw new InvalidDataException($"{t.Name}: type {t.Type}"),
    };

    public ReadOnlySpan<byte> Data(TensorInfo t) => Bytes.AsSpan((int)(DataStart + (long)t.Offset), (int)ByteSize(t));

    public TensorInfo Tensor(string name) => Tensors.Single(t => t.Name == name);

    public T Get<T>(string key) => (T)Metadata[key].Value;

    private object Value(uint type, int depth) => type switch
    {
        0 => Take(1)[0],
        1 => (sbyte)Take(1)[0],
        2 => BitConverter.ToUInt16(Take(2)),
        3 => BitConverter.ToInt16(Take(2)),
        4 => U32(),
        5 => BitConverter.ToInt32(Take(4)),
        6 => BitConverter.ToSingle(Take(4)),
        7 => Take(1)[0] switch { 0 => false, 1 => true, var b => throw new InvalidDataException($"bool {b}") },
        8 => Str(),
        9 when depth == 0 => Array(),
        10 => U64(),
        11 => BitConverter.ToInt64(Take(8)),
        12 => BitConverter.ToDouble(Take(8)),
        _ => throw new InvalidDataException($"value type {type}"),
    };

    private object[] Array()
    {
        uint element = U32();
        ulong count = U64();
        if (count > (ulong)(Bytes.Length - _position))
        {
            throw new InvalidDataException("array beyond the file");
        }

        var values = new object[count];
        for (ulong i = 0; i < count; i++)
        {
            values[i] = Value(element, depth: 1);
        }

        return values;
    }

    private string Str()
    {
        ulong length = U64();
        if (length > (ulong)(Bytes.Length - _position))
        {
            throw new InvalidDataException("string beyond the file");
        }

        return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Take((int)length));
    }

    private uint U32() => BitConverter.ToUInt32(Take(4));

    private ulong U64() => BitConverter.ToUInt64(Take(8));

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || _position + n > Bytes.Length)
        {
            throw new InvalidDataException($"truncated at {_position}");
        }

        ReadOnlySpan<byte> span = Bytes.AsSpan(_position, n);
        _position += n;
        return span;
    }
}
