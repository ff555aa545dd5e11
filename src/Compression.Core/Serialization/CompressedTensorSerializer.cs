// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using Compression.Composition;
using Compression.Safetensors;

namespace Compression.Serialization;

/// <summary>
/// Writes <see cref="CompressedTensor"/>s into safetensors files and reads them back by their <see cref="CompressedTensor.Kind"/>.
/// </summary>
/// <remarks>
/// <para>On disk, a compressed tensor named <c>n</c> is the metadata entries <c>n.kind</c>, <c>n.rows</c>,
/// <c>n.columns</c> plus whatever parts and attributes its kind writes under <c>n.</c>. Kinds are registered explicitly
/// (no reflection): <see cref="Default"/> knows Core's kinds, and each family adds its own with <see cref="WithKind"/>.
/// The serializer is immutable, so registering never changes the behaviour of another caller.</para>
/// </remarks>
public sealed class CompressedTensorSerializer
{
    private readonly ImmutableDictionary<string, Func<CompressedTensorReader, CompressedTensor>> _readers;

    private CompressedTensorSerializer(ImmutableDictionary<string, Func<CompressedTensorReader, CompressedTensor>> readers) =>
        _readers = readers;

    /// <summary>Knows the kinds defined in Core: "dense" (<see cref="UncompressedTensor"/>) and "residual" (<see cref="ResidualTensor"/>).</summary>
    public static CompressedTensorSerializer Default { get; } = new(
        ImmutableDictionary.Create<string, Func<CompressedTensorReader, CompressedTensor>>(StringComparer.Ordinal)
            .Add(UncompressedTensor.KindName, UncompressedTensor.Read)
            .Add(ResidualTensor.KindName, ResidualTensor.Read));

    /// <summary>The kinds this serializer can read.</summary>
    public IEnumerable<string> Kinds => _readers.Keys;

    /// <summary>A serializer that also reads <paramref name="kind"/> with <paramref name="read"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="kind"/> is already registered.</exception>
    public CompressedTensorSerializer WithKind(string kind, Func<CompressedTensorReader, CompressedTensor> read)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentNullException.ThrowIfNull(read);
        if (_readers.ContainsKey(kind))
        {
            throw new ArgumentException($"Kind '{kind}' is already registered.", nameof(kind));
        }

        return new CompressedTensorSerializer(_readers.Add(kind, read));
    }

    /// <summary>Adds <paramref name="tensor"/> to <paramref name="writer"/> under <paramref name="name"/>.</summary>
    public void Write(SafetensorsWriter writer, string name, CompressedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(tensor);
        writer.SetMetadata($"{name}.kind", tensor.Kind);
        writer.SetMetadata($"{name}.rows", tensor.Rows.ToString(System.Globalization.CultureInfo.InvariantCulture));
        writer.SetMetadata($"{name}.columns", tensor.Columns.ToString(System.Globalization.CultureInfo.InvariantCulture));
        tensor.Serialize(new CompressedTensorWriter(writer, name, this));
    }

    /// <summary>Reads the compressed tensor stored under <paramref name="name"/>.</summary>
    /// <exception cref="InvalidDataException">It is missing, of an unregistered kind, or inconsistent.</exception>
    public CompressedTensor Read(SafetensorsCheckpoint source, string name)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!source.Metadata.TryGetValue($"{name}.kind", out string? kind))
        {
            throw new InvalidDataException($"'{source.Path}' holds no compressed tensor named '{name}'.");
        }

        if (!_readers.TryGetValue(kind, out Func<CompressedTensorReader, CompressedTensor>? read))
        {
            throw new InvalidDataException(
                $"Compressed tensor '{name}' is of kind '{kind}', which this serializer does not know (known: {string.Join(", ", _readers.Keys)}).");
        }

        var probe = new CompressedTensorReader(source, name, this, 0, 0);
        long rows = probe.ReadInt64Attribute("rows"), columns = probe.ReadInt64Attribute("columns");
        if (rows is < 0 or > int.MaxValue || columns is < 0 or > int.MaxValue)
        {
            throw new InvalidDataException($"Compressed tensor '{name}' has shape {rows}×{columns}.");
        }

        CompressedTensor result = read(new CompressedTensorReader(source, name, this, (int)rows, (int)columns));
        if (result.Rows != rows || result.Columns != columns)
        {
            throw new InvalidDataException($"Compressed tensor '{name}' is recorded as {rows}×{columns} but reads back as {result.Rows}×{result.Columns}.");
        }

        return result;
    }
}
