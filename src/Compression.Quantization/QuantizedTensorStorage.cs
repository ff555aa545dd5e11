// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization.Formats;

namespace Compression.Quantization;

/// <summary>
/// Reusable memory for the results of one <see cref="RtnOptions"/> on one weight shape: the packed codes, the scales
/// and the zero points. Quantizing into it allocates nothing for row-local scales (per-channel, per-group, MX, NVFP4),
/// which matters for pipelines that quantize layer after layer and write each result out before the next: on a VM a
/// fresh 16 MiB result can cost more than the quantization itself (page faults on first touch).
/// </summary>
/// <remarks>
/// A tensor returned by <see cref="RoundToNearestQuantizer.Quantize(Tensors.DenseTensor, QuantizedTensorStorage, CompressionContext?)"/>
/// views this memory: quantizing into the same storage again overwrites it. Copy a result out (or serialize it)
/// before reusing its storage.
/// </remarks>
/// <example>
/// <code>
/// var quantizer = new RoundToNearestQuantizer(RtnOptions.W4Group128);
/// var storage = QuantizedTensorStorage.Create(RtnOptions.W4Group128, rows: 4096, columns: 4096);
/// foreach (DenseTensor weight in layers)
/// {
///     QuantizedTensor q = quantizer.Quantize(weight, storage);
///     writer.Write(q);                    // before the next layer overwrites it
/// }
/// </code>
/// </example>
public sealed class QuantizedTensorStorage
{
    private QuantizedTensorStorage(RtnOptions options, int rows, int columns, byte[] packedCodes, float[] scales, byte[]? zeroPoints)
    {
        Options = options;
        Rows = rows;
        Columns = columns;
        PackedCodes = packedCodes;
        Scales = scales;
        ZeroPoints = zeroPoints;
    }

    /// <summary>The options the storage is laid out for.</summary>
    public RtnOptions Options { get; }

    /// <summary>Rows of the weights it holds results for.</summary>
    public int Rows { get; }

    /// <summary>Columns of the weights it holds results for.</summary>
    public int Columns { get; }

    internal byte[] PackedCodes { get; }

    internal float[] Scales { get; }

    internal byte[]? ZeroPoints { get; }

    /// <summary>Allocates storage for quantizing a <paramref name="rows"/> × <paramref name="columns"/> weight with <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentException">The options do not fit the shape (the quantizer's own checks).</exception>
    public static QuantizedTensorStorage Create(RtnOptions options, int rows, int columns)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        options.Validate(rows, columns);
        if (options.Format is not GroupedFormat format)
        {
            throw new ArgumentException($"{options.Format} has no reusable storage layout.", nameof(options));
        }

        var layout = new ScaleLayout(options.EffectiveGranularity, rows, columns);
        return new QuantizedTensorStorage(options, rows, columns, GC.AllocateUninitializedArray<byte>(rows * format.PackedRowLength(columns)),
            new float[layout.GroupCount], options.Symmetric ? null : new byte[layout.GroupCount]);
    }
}
