// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Globalization;
using Compression.Safetensors;

namespace Compression.Serialization;

/// <summary>
/// Where a <see cref="CompressedTensor"/> writes itself: tensors named <c>{prefix}.{part}</c> in a safetensors file
/// and attributes named <c>{prefix}.{key}</c> in its <c>__metadata__</c>.
/// </summary>
public sealed class CompressedTensorWriter
{
    private readonly SafetensorsWriter _target;
    private readonly CompressedTensorSerializer _serializer;

    internal CompressedTensorWriter(SafetensorsWriter target, string prefix, CompressedTensorSerializer serializer)
    {
        _target = target;
        Prefix = prefix;
        _serializer = serializer;
    }

    /// <summary>The name under which this tensor's parts are written.</summary>
    public string Prefix { get; }

    /// <summary>Writes one part, e.g. "weight_packed", from unmanaged elements.</summary>
    public void WriteTensor<T>(string part, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<T> data)
        where T : unmanaged =>
        _target.Add(Name(part), dtype, shape, data);

    /// <summary>Writes one attribute, e.g. "group_size" = "128".</summary>
    public void WriteAttribute(string key, string value) => _target.SetMetadata(Name(key), value);

    /// <summary>Writes one integer attribute.</summary>
    public void WriteAttribute(string key, long value) => WriteAttribute(key, value.ToString(CultureInfo.InvariantCulture));

    /// <summary>Writes a nested compressed tensor (a part of a composite such as <see cref="Composition.ResidualTensor"/>).</summary>
    public void WriteChild(string part, CompressedTensor child) => _serializer.Write(_target, Name(part), child);

    private string Name(string part)
    {
        ArgumentException.ThrowIfNullOrEmpty(part);
        return $"{Prefix}.{part}";
    }
}
