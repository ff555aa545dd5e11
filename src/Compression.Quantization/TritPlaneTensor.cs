// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization.Packing;
using Compression.Safetensors;
using Compression.Serialization;

namespace Compression.Quantization;

/// <summary>A matrix stored as P ternary planes and P float32 scales per row: w ≈ Σₖ αₖ·tₖ (see <see cref="TritPlaneQuantizer"/>).</summary>
public sealed class TritPlaneTensor : CompressedTensor
{
    internal const string KindName = "trit-planes";
    private readonly sbyte[][] _trits;
    private readonly float[] _scales;

    internal TritPlaneTensor(int rows, int columns, sbyte[][] trits, float[] scales)
        : base(rows, columns)
    {
        _trits = trits;
        _scales = scales;
    }

    /// <summary>The number of planes.</summary>
    public int Planes => _trits.Length;

    /// <summary>Scales, row-major: αₖ of row r at [r·Planes + k].</summary>
    public ReadOnlyMemory<float> Scales => _scales;

    /// <summary>Plane <paramref name="k"/>'s trits (−1, 0, +1), row-major.</summary>
    public ReadOnlyMemory<sbyte> Plane(int k) => _trits[k];

    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <inheritdoc/>
    public override long StorageBits => Planes * (8L * Rows * TritPacker.PackedLength(Columns) + 32L * Rows);

    /// <summary>A serializer that also reads trit-plane tensors.</summary>
    public static CompressedTensorSerializer Register(CompressedTensorSerializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        return serializer.WithKind(KindName, Read);
    }

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination)
    {
        for (int r = 0; r < Rows; r++)
        {
            for (int j = 0; j < Columns; j++)
            {
                float value = 0;
                for (int k = 0; k < Planes; k++)
                {
                    value += _scales[r * Planes + k] * _trits[k][r * Columns + j];
                }

                destination[r * Columns + j] = value;
            }
        }
    }

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteAttribute("planes", Planes);
        writer.WriteTensor<float>("scales", SafetensorsDType.F32, [Rows, Planes], _scales);
        int stride = TritPacker.PackedLength(Columns);
        for (int k = 0; k < Planes; k++)
        {
            var packed = new byte[Rows * stride];
            var row = new byte[Columns];
            for (int r = 0; r < Rows; r++)
            {
                for (int j = 0; j < Columns; j++)
                {
                    row[j] = (byte)(_trits[k][r * Columns + j] + 1);
                }

                TritPacker.Pack(row, packed.AsSpan(r * stride, stride));
            }

            writer.WriteTensor<byte>($"plane_{k}", SafetensorsDType.U8, [Rows, stride], packed);
        }
    }

    private static TritPlaneTensor Read(CompressedTensorReader reader)
    {
        long planes = reader.ReadInt64Attribute("planes");
        if (planes is < 1 or > 4)
        {
            throw new System.IO.InvalidDataException($"Trit-plane tensor '{reader.Prefix}' has {planes} planes.");
        }

        int rows = reader.Rows, columns = reader.Columns, stride = TritPacker.PackedLength(columns);
        float[] scales = reader.ReadTensor<float>("scales", SafetensorsDType.F32, rows, planes);
        var trits = new sbyte[planes][];
        var row = new byte[columns];
        for (int k = 0; k < planes; k++)
        {
            byte[] packed = reader.ReadTensor<byte>($"plane_{k}", SafetensorsDType.U8, rows, stride);
            trits[k] = new sbyte[rows * columns];
            for (int r = 0; r < rows; r++)
            {
                try
                {
                    TritPacker.Unpack(packed.AsSpan(r * stride, stride), row);
                }
                catch (ArgumentException e)
                {
                    throw new System.IO.InvalidDataException($"Trit-plane tensor '{reader.Prefix}': {e.Message}", e);
                }

                for (int j = 0; j < columns; j++)
                {
                    trits[k][r * columns + j] = (sbyte)(row[j] - 1);
                }
            }
        }

        return new TritPlaneTensor(rows, columns, trits, scales);
    }
}
