// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Diagnostics.CodeAnalysis;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using Compression.Safetensors;

namespace Compression.Serialization;

/// <summary>Reads back what a <see cref="CompressedTensorWriter"/> wrote. Every inconsistency is an <see cref="InvalidDataException"/>.</summary>
public sealed class CompressedTensorReader
{
    private readonly SafetensorsCheckpoint _source;
    private readonly CompressedTensorSerializer _serializer;

    internal CompressedTensorReader(SafetensorsCheckpoint source, string prefix, CompressedTensorSerializer serializer, int rows, int columns)
    {
        _source = source;
        Prefix = prefix;
        _serializer = serializer;
        Rows = rows;
        Columns = columns;
    }

    /// <summary>The name under which the parts were written.</summary>
    public string Prefix { get; }

    /// <summary>The logical rows recorded for this tensor.</summary>
    public int Rows { get; }

    /// <summary>The logical columns recorded for this tensor.</summary>
    public int Columns { get; }

    /// <summary>Whether an optional part was written.</summary>
    public bool Contains(string part) => _source.Contains(Name(part));

    /// <summary>Reads one part as an array of <typeparamref name="T"/>, checking its dtype (any shape).</summary>
    /// <exception cref="InvalidDataException">The part is missing or has another dtype.</exception>
    public T[] ReadTensor<T>(string part, SafetensorsDType dtype)
        where T : unmanaged =>
        ReadTensorCore<T>(part, dtype, null);

    /// <summary>Reads one part as an array of <typeparamref name="T"/>, checking its dtype and shape.</summary>
    /// <exception cref="InvalidDataException">The part is missing or has another dtype or shape.</exception>
    public T[] ReadTensor<T>(string part, SafetensorsDType dtype, params long[] expectedShape)
        where T : unmanaged =>
        ReadTensorCore<T>(part, dtype, expectedShape ?? throw new ArgumentNullException(nameof(expectedShape)));

    private T[] ReadTensorCore<T>(string part, SafetensorsDType dtype, long[]? expectedShape)
        where T : unmanaged
    {
        string name = Name(part);
        if (!_source.Contains(name))
        {
            throw new InvalidDataException($"Compressed tensor '{Prefix}' has no part '{name}'.");
        }

        SafetensorsTensorInfo info = _source.GetInfo(name);
        if (info.DType != dtype)
        {
            throw new InvalidDataException($"Part '{name}' is {info.DType}; {dtype} was expected.");
        }

        if (expectedShape is not null && !ShapeEquals(info.Shape, expectedShape))
        {
            throw new InvalidDataException(
                $"Part '{name}' has shape [{string.Join(", ", info.Shape)}]; [{string.Join(", ", expectedShape)}] was expected.");
        }

        return MemoryMarshal.Cast<byte, T>(_source.GetBytes(name)).ToArray();
    }

    /// <summary>Reads one attribute.</summary>
    /// <exception cref="InvalidDataException">The attribute is missing.</exception>
    public string ReadAttribute(string key) =>
        _source.Metadata.TryGetValue(Name(key), out string? value)
            ? value
            : throw new InvalidDataException($"Compressed tensor '{Prefix}' has no attribute '{Name(key)}'.");

    /// <summary>Reads an optional attribute; false when it is absent.</summary>
    public bool TryReadAttribute(string key, [NotNullWhen(true)] out string? value) => _source.Metadata.TryGetValue(Name(key), out value);

    /// <summary>Reads one integer attribute.</summary>
    /// <exception cref="InvalidDataException">The attribute is missing or not an integer.</exception>
    public long ReadInt64Attribute(string key)
    {
        string text = ReadAttribute(key);
        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value)
            ? value
            : throw new InvalidDataException($"Attribute '{Name(key)}' is '{text}', not an integer.");
    }

    /// <summary>Reads a nested compressed tensor.</summary>
    public CompressedTensor ReadChild(string part) => _serializer.Read(_source, Name(part));

    private static bool ShapeEquals(IReadOnlyList<long> actual, long[] expected)
    {
        if (actual.Count != expected.Length)
        {
            return false;
        }

        for (int i = 0; i < expected.Length; i++)
        {
            if (actual[i] != expected[i])
            {
                return false;
            }
        }

        return true;
    }

    private string Name(string part) => $"{Prefix}.{part}";
}
