// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace Compression.Quantization.Gguf;

/// <summary>
/// One GGUF metadata value: a scalar of one of the twelve scalar types, or an array of scalars or strings. Immutable;
/// arrays are copied on creation.
/// </summary>
/// <remarks>The GGUF specification also allows arrays of arrays; no key llama.cpp reads for a Llama model uses them, so
/// they are not offered.</remarks>
public sealed class GgufValue
{
    private readonly object _value;

    private GgufValue(GgufValueType type, GgufValueType? elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        _value = value;
    }

    /// <summary>The value's type tag.</summary>
    public GgufValueType Type { get; }

    /// <summary>For an array, its elements' type tag; null otherwise.</summary>
    public GgufValueType? ElementType { get; }

    /// <summary>For an array, its length; 1 otherwise.</summary>
    public int Count => _value is Array a && _value is not string ? a.Length : 1;

    /// <summary>The value as a .NET object (a copy for arrays): byte, sbyte, ushort, short, uint, int, float, bool,
    /// string, ulong, long, double, or an array of one of them.</summary>
    public object Value => _value is Array a ? a.Clone() : _value;

    /// <summary>A uint8.</summary>
    public static GgufValue UInt8(byte value) => new(GgufValueType.UInt8, null, value);

    /// <summary>An int8.</summary>
    public static GgufValue Int8(sbyte value) => new(GgufValueType.Int8, null, value);

    /// <summary>A uint16.</summary>
    public static GgufValue UInt16(ushort value) => new(GgufValueType.UInt16, null, value);

    /// <summary>An int16.</summary>
    public static GgufValue Int16(short value) => new(GgufValueType.Int16, null, value);

    /// <summary>A uint32.</summary>
    public static GgufValue UInt32(uint value) => new(GgufValueType.UInt32, null, value);

    /// <summary>An int32.</summary>
    public static GgufValue Int32(int value) => new(GgufValueType.Int32, null, value);

    /// <summary>A float32.</summary>
    public static GgufValue Float32(float value) => new(GgufValueType.Float32, null, value);

    /// <summary>A bool.</summary>
    public static GgufValue Bool(bool value) => new(GgufValueType.Bool, null, value);

    /// <summary>A UTF-8 string.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="value"/> is null.</exception>
    public static GgufValue String(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(GgufValueType.String, null, value);
    }

    /// <summary>A uint64.</summary>
    public static GgufValue UInt64(ulong value) => new(GgufValueType.UInt64, null, value);

    /// <summary>An int64.</summary>
    public static GgufValue Int64(long value) => new(GgufValueType.Int64, null, value);

    /// <summary>A float64.</summary>
    public static GgufValue Float64(double value) => new(GgufValueType.Float64, null, value);

    /// <summary>An array of strings (e.g. <c>tokenizer.ggml.tokens</c>).</summary>
    /// <exception cref="ArgumentException">An element is null.</exception>
    public static GgufValue Array(IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        string[] copy = values.ToArray();
        if (copy.Any(s => s is null))
        {
            throw new ArgumentException("A GGUF string array cannot hold null.", nameof(values));
        }

        return new(GgufValueType.Array, GgufValueType.String, copy);
    }

    /// <summary>An array of float32 (e.g. <c>tokenizer.ggml.scores</c>).</summary>
    public static GgufValue Array(IEnumerable<float> values) => ArrayOf(GgufValueType.Float32, values);

    /// <summary>An array of int32 (e.g. <c>tokenizer.ggml.token_type</c>).</summary>
    public static GgufValue Array(IEnumerable<int> values) => ArrayOf(GgufValueType.Int32, values);

    /// <summary>An array of uint32.</summary>
    public static GgufValue Array(IEnumerable<uint> values) => ArrayOf(GgufValueType.UInt32, values);

    /// <summary>An array of int64.</summary>
    public static GgufValue Array(IEnumerable<long> values) => ArrayOf(GgufValueType.Int64, values);

    /// <summary>An array of uint64.</summary>
    public static GgufValue Array(IEnumerable<ulong> values) => ArrayOf(GgufValueType.UInt64, values);

    /// <summary>An array of float64.</summary>
    public static GgufValue Array(IEnumerable<double> values) => ArrayOf(GgufValueType.Float64, values);

    /// <summary>An array of uint8.</summary>
    public static GgufValue Array(IEnumerable<byte> values) => ArrayOf(GgufValueType.UInt8, values);

    /// <summary>An array of int8.</summary>
    public static GgufValue Array(IEnumerable<sbyte> values) => ArrayOf(GgufValueType.Int8, values);

    /// <summary>An array of uint16.</summary>
    public static GgufValue Array(IEnumerable<ushort> values) => ArrayOf(GgufValueType.UInt16, values);

    /// <summary>An array of int16.</summary>
    public static GgufValue Array(IEnumerable<short> values) => ArrayOf(GgufValueType.Int16, values);

    /// <summary>An array of bools.</summary>
    public static GgufValue Array(IEnumerable<bool> values) => ArrayOf(GgufValueType.Bool, values);

    private static GgufValue ArrayOf<T>(GgufValueType elementType, IEnumerable<T> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(GgufValueType.Array, elementType, values.ToArray());
    }

    /// <summary>Writes the value (without its type tag for scalars; with the element tag and count for arrays).</summary>
    internal void WriteTo(BinaryWriter writer)
    {
        if (Type != GgufValueType.Array)
        {
            WriteScalar(writer, Type, _value);
            return;
        }

        var elements = (Array)_value;
        writer.Write((uint)ElementType!.Value);
        writer.Write((ulong)elements.Length);
        foreach (object element in elements)
        {
            WriteScalar(writer, ElementType.Value, element);
        }
    }

    internal static void WriteString(BinaryWriter writer, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static void WriteScalar(BinaryWriter writer, GgufValueType type, object value)
    {
        // BinaryWriter writes little-endian on every platform, as GGUF (v3, little-endian files) requires.
        switch (type)
        {
            case GgufValueType.UInt8: writer.Write((byte)value); break;
            case GgufValueType.Int8: writer.Write((sbyte)value); break;
            case GgufValueType.UInt16: writer.Write((ushort)value); break;
            case GgufValueType.Int16: writer.Write((short)value); break;
            case GgufValueType.UInt32: writer.Write((uint)value); break;
            case GgufValueType.Int32: writer.Write((int)value); break;
            case GgufValueType.Float32: writer.Write((float)value); break;
            case GgufValueType.Bool: writer.Write((byte)((bool)value ? 1 : 0)); break;
            case GgufValueType.String: WriteString(writer, (string)value); break;
            case GgufValueType.UInt64: writer.Write((ulong)value); break;
            case GgufValueType.Int64: writer.Write((long)value); break;
            case GgufValueType.Float64: writer.Write((double)value); break;
            default: throw new InvalidOperationException($"Unexpected GGUF scalar type {type}.");
        }
    }

    /// <summary>The value in a readable form (arrays abbreviated).</summary>
    public override string ToString() => _value switch
    {
        Array a => $"{ElementType}[{a.Length}]",
        _ => $"{Type} {_value}",
    };
}
