// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Globalization;
using System.IO;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// A matrix quantized by <see cref="RoundToNearestQuantizer"/>: packed codes, one scale per group (and a zero point
/// per group when asymmetric), in the storage the format defines.
/// </summary>
/// <remarks>
/// Codes are packed row by row (<see cref="RowStride"/> bytes per row, each row starting on a byte boundary so rows
/// can be packed and read in parallel; at most 7 bits per row are padding). <see cref="CompressedTensor.StorageBits"/>
/// counts every stored byte: codes with their padding, scales in their storage type, zero points, second-level
/// scales and the tensor scale.
/// </remarks>
public sealed partial class QuantizedTensor : CompressedTensor, ITunableTensor
{
    internal const string KindName = "quantized";

    internal QuantizedTensor(NumberFormat format, Granularity granularity, int rows, int columns, byte[] packedCodes, int rowStride,
        float[] scales, ScaleEncoding scaleEncoding, byte[]? zeroPoints = null, float globalScale = 1f, DoubleQuantization? doubleQuantization = null)
        : base(rows, columns)
    {
        Format = format;
        Granularity = granularity;
        PackedCodesArray = packedCodes;
        RowStride = rowStride;
        ScalesArray = scales;
        ScaleEncoding = scaleEncoding;
        ZeroPointsArray = zeroPoints;
        GlobalScale = globalScale;
        DoubleQuantization = doubleQuantization;
        Layout = new ScaleLayout(granularity, rows, columns);
    }

    /// <summary>The element format.</summary>
    public NumberFormat Format { get; }

    /// <summary>Which weights share a scale.</summary>
    public Granularity Granularity { get; }

    /// <summary>The packed codes, <see cref="CompressedTensor.Rows"/> × <see cref="RowStride"/> bytes.</summary>
    public ReadOnlyMemory<byte> PackedCodes => PackedCodesArray;

    /// <summary>Bytes per packed row.</summary>
    public int RowStride { get; }

    /// <summary>The scale of every group, as float32 values exactly equal to what is stored (group order: row of
    /// groups, then segment along the row).</summary>
    public ReadOnlyMemory<float> Scales => ScalesArray;

    /// <summary>How the scales are stored.</summary>
    public ScaleEncoding ScaleEncoding { get; }

    /// <summary>The zero point (a code) of every group, for asymmetric integer formats; empty otherwise.</summary>
    public ReadOnlyMemory<byte> ZeroPoints => ZeroPointsArray;

    /// <summary>The per-tensor float32 scale (NVFP4); 1 for other formats.</summary>
    public float GlobalScale { get; }

    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <inheritdoc/>
    public override long StorageBits
    {
        get
        {
            long bits = 8L * PackedCodesArray.Length + (ZeroPointsArray is null ? 0 : 8L * ZeroPointsArray.Length);
            bits += ScaleEncoding switch
            {
                ScaleEncoding.Float32 => 32L * ScalesArray.Length,
                ScaleEncoding.Float16 or ScaleEncoding.BFloat16 => 16L * ScalesArray.Length,
                ScaleEncoding.E8M0 => 8L * ScalesArray.Length,
                ScaleEncoding.Fp8E4M3 => 8L * ScalesArray.Length + 32,
                ScaleEncoding.DoubleQuantizedInt8 => 8L * ScalesArray.Length + 32L * DoubleQuantization!.Scales.Length + 32,
                _ => throw new InvalidOperationException(),
            };
            return bits;
        }
    }

    internal byte[] PackedCodesArray { get; }

    internal float[] ScalesArray { get; }

    internal byte[]? ZeroPointsArray { get; }

    internal DoubleQuantization? DoubleQuantization { get; }

    internal ScaleLayout Layout { get; }

    /// <summary>The codes, one byte each, row-major (for inspection and tests).</summary>
    public byte[] UnpackCodes()
    {
        var codes = new byte[Rows * Columns];
        var grouped = (GroupedFormat)Format;
        for (int r = 0; r < Rows; r++)
        {
            grouped.UnpackRow(PackedCodesArray.AsSpan(r * RowStride, RowStride), codes.AsSpan(r * Columns, Columns));
        }

        return codes;
    }

    /// <summary>A serializer that also reads quantized tensors.</summary>
    public static CompressedTensorSerializer Register(CompressedTensorSerializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        return serializer.WithKind(KindName, Read);
    }

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination) => Format.Dequantize(this, destination);

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteAttribute("format", Format.Name);
        writer.WriteAttribute("granularity", GranularityNames.Format(Granularity));
        writer.WriteAttribute("scale_encoding", ScaleEncoding.ToString());
        writer.WriteAttribute("global_scale", BitConverter.SingleToInt32Bits(GlobalScale));
        writer.WriteTensor<byte>("codes", SafetensorsDType.U8, [Rows, RowStride], PackedCodesArray);
        long[] groups = [ScalesArray.Length];
        switch (ScaleEncoding)
        {
            case ScaleEncoding.Float32:
                writer.WriteTensor<float>("scales", SafetensorsDType.F32, groups, ScalesArray);
                break;
            case ScaleEncoding.Float16:
                writer.WriteTensor<Half>("scales", SafetensorsDType.F16, groups, Array.ConvertAll(ScalesArray, s => (Half)s));
                break;
            case ScaleEncoding.BFloat16:
                writer.WriteTensor<BFloat16>("scales", SafetensorsDType.BF16, groups, Array.ConvertAll(ScalesArray, s => (BFloat16)s));
                break;
            case ScaleEncoding.E8M0:
                writer.WriteTensor<byte>("scales", SafetensorsDType.U8, groups, Array.ConvertAll(ScalesArray, E8M0.Encode));
                break;
            case ScaleEncoding.Fp8E4M3:
                writer.WriteTensor<byte>("scales", SafetensorsDType.F8_E4M3, groups,
                    Array.ConvertAll(ScalesArray, s => Formats.MiniFloatCodec.Fp8E4M3.EncodeGridValue(s)));
                break;
            case ScaleEncoding.DoubleQuantizedInt8:
                writer.WriteTensor<sbyte>("scales", SafetensorsDType.I8, groups, DoubleQuantization!.Codes);
                writer.WriteTensor<float>("scales_scale", SafetensorsDType.F32, [DoubleQuantization.Scales.Length], DoubleQuantization.Scales);
                writer.WriteAttribute("scales_offset", BitConverter.SingleToInt32Bits(DoubleQuantization.Offset));
                break;
        }

        if (ZeroPointsArray is not null)
        {
            writer.WriteTensor<byte>("zero_points", SafetensorsDType.U8, groups, ZeroPointsArray);
        }
    }

    private static QuantizedTensor Read(CompressedTensorReader reader)
    {
        NumberFormat format;
        Granularity granularity;
        ScaleEncoding encoding;
        try
        {
            format = NumberFormat.FromName(reader.ReadAttribute("format"));
            granularity = GranularityNames.Parse(reader.ReadAttribute("granularity"));
            encoding = Enum.Parse<ScaleEncoding>(reader.ReadAttribute("scale_encoding"));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"Quantized tensor '{reader.Prefix}': {e.Message}", e);
        }

        int rows = reader.Rows, columns = reader.Columns;
        var layout = new ScaleLayout(granularity, rows, columns);
        int stride = ((GroupedFormat)format).PackedRowLength(columns);
        byte[] codes = reader.ReadTensor<byte>("codes", SafetensorsDType.U8, rows, stride);
        long groups = layout.GroupCount;
        float globalScale = BitConverter.Int32BitsToSingle((int)reader.ReadInt64Attribute("global_scale"));
        DoubleQuantization? doubleQuantization = null;
        float[] scales = encoding switch
        {
            ScaleEncoding.Float32 => reader.ReadTensor<float>("scales", SafetensorsDType.F32, groups),
            ScaleEncoding.Float16 => Array.ConvertAll(reader.ReadTensor<Half>("scales", SafetensorsDType.F16, groups), h => (float)h),
            ScaleEncoding.BFloat16 => Array.ConvertAll(reader.ReadTensor<BFloat16>("scales", SafetensorsDType.BF16, groups), b => (float)b),
            ScaleEncoding.E8M0 => Array.ConvertAll(reader.ReadTensor<byte>("scales", SafetensorsDType.U8, groups), E8M0.Decode),
            ScaleEncoding.Fp8E4M3 => Array.ConvertAll(reader.ReadTensor<byte>("scales", SafetensorsDType.F8_E4M3, groups), NumericConversions.DecodeFloat8E4M3),
            ScaleEncoding.DoubleQuantizedInt8 => (doubleQuantization = new DoubleQuantization(
                reader.ReadTensor<sbyte>("scales", SafetensorsDType.I8, groups),
                reader.ReadTensor<float>("scales_scale", SafetensorsDType.F32, (groups + DoubleQuantization.BlockSize - 1) / DoubleQuantization.BlockSize),
                BitConverter.Int32BitsToSingle((int)reader.ReadInt64Attribute("scales_offset")))).Decode(),
            _ => throw new InvalidDataException($"Quantized tensor '{reader.Prefix}' has unknown scale encoding {encoding}."),
        };
        byte[]? zeroPoints = reader.Contains("zero_points") ? reader.ReadTensor<byte>("zero_points", SafetensorsDType.U8, groups) : null;
        return new QuantizedTensor(format, granularity, rows, columns, codes, stride, scales, encoding, zeroPoints, globalScale, doubleQuantization);
    }
}

/// <summary>Int8 codes of scales minus their mean, one float32 scale per <see cref="BlockSize"/> codes (NF4 double quantization).</summary>
internal sealed record DoubleQuantization(sbyte[] Codes, float[] Scales, float Offset)
{
    public const int BlockSize = 256;

    public float[] Decode()
    {
        var values = new float[Codes.Length];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = MathF.Max(Codes[i] * Scales[i / BlockSize] + Offset, 0f);
        }

        return values;
    }
}

/// <summary>Text names of granularities in checkpoints: "per-tensor", "per-channel", "group-128", "block-128x128".</summary>
internal static class GranularityNames
{
    public static string Format(Granularity granularity) => granularity.ToString();

    public static Granularity Parse(string text)
    {
        if (text == "per-tensor")
        {
            return Granularity.PerTensor;
        }

        if (text == "per-channel")
        {
            return Granularity.PerChannel;
        }

        if (text.StartsWith("group-", StringComparison.Ordinal) && int.TryParse(text.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out int size) && size > 0)
        {
            return Granularity.PerGroup(size);
        }

        if (text.StartsWith("block-", StringComparison.Ordinal))
        {
            string[] parts = text[6..].Split('x');
            if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int r) &&
                int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int c) && r > 0 && c > 0)
            {
                return Granularity.PerBlock(r, c);
            }
        }

        throw new ArgumentException($"Unknown granularity '{text}'.", nameof(text));
    }
}
