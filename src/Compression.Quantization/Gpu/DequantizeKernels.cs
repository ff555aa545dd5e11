// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>
/// How a dequantize kernel writes eight decoded values: float32 (two 16-byte stores) or BF16 (one 16-byte store).
/// The kernel is generic over this struct, as the quantize kernels are over <see cref="IWeightLoader"/>.
/// </summary>
internal interface IDequantizedStore
{
    /// <summary>Writes values <c>8·octet … 8·octet + 7</c> of the output.</summary>
    void Store(ArrayView<Float4> words, long octet, Octet values);
}

/// <summary>float32 output: the decoded values themselves.</summary>
internal readonly struct Float32Store : IDequantizedStore
{
    public void Store(ArrayView<Float4> words, long octet, Octet v)
    {
        words[2 * octet] = new Float4 { X = v.V0, Y = v.V1, Z = v.V2, W = v.V3 };
        words[2 * octet + 1] = new Float4 { X = v.V4, Y = v.V5, Z = v.V6, W = v.V7 };
    }
}

/// <summary>
/// BF16 output: each value rounded as <c>NumericConversions.SingleToBFloat16Bits</c> does (nearest, ties to even;
/// NaN to a quiet NaN), two to a 32-bit lane, the first in the low half. The lanes travel as float bits only to share
/// <see cref="Float4"/>'s vector store.
/// </summary>
internal readonly struct BFloat16Store : IDequantizedStore
{
    public void Store(ArrayView<Float4> words, long octet, Octet v) =>
        words[octet] = new Float4 { X = Pair(v.V0, v.V1), Y = Pair(v.V2, v.V3), Z = Pair(v.V4, v.V5), W = Pair(v.V6, v.V7) };

    private static float Pair(float low, float high) => BitConverter.Int32BitsToSingle(Bits(low) | (Bits(high) << 16));

    internal static int Bits(float value)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(value);
        uint rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
        uint quiet = (bits >> 16) | 0x0040u;
        return (int)((bits & 0x7FFF_FFFFu) > 0x7F80_0000u ? quiet : rounded);
    }
}

/// <summary>
/// The bandwidth kernel of dequantization for the formats of the fast quantize kernels (byte or nibble codes, float32
/// scales of row-local groups): every thread decodes 32 consecutive codes of one row (one or two 16-byte loads) into
/// four octets (eight or four 16-byte stores). Rows are the grid's y dimension and a group's index is a shift of the
/// column, so no thread divides. Each value is computed by the <see cref="IElementDecoder"/> the kernel is compiled for,
/// with the operations of <see cref="QuantizeKernels.DecodeValue"/> (the CPU's decoding), so the float32 output equals
/// <c>QuantizedTensor.Decompress()</c> bit for bit and the BF16 output its round-to-nearest-even conversion.
/// </summary>
internal static class DequantizeKernels
{
    /// <summary>Codes per thread.</summary>
    public const int ChunkWidth = 32;

    /// <summary>
    /// Decodes row <c>Grid.IdxY</c>, chunk <c>Grid.IdxX · Group.DimX + Group.IdxX</c>. The group of column j is
    /// <c>row · SegmentsPerRow + (j &gt;&gt; groupShift)</c>: groupShift is log2 of a group width of 16 to 128, or 30
    /// for per-channel scales (one segment per row).
    /// </summary>
    public static void Chunks<TStore, TDecoder>(ArrayView<Float4> packed, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<float> tensorScale,
        ArrayView<Float4> destination, GpuFormatSpec spec, int chunksPerRow, int groupShift)
        where TStore : struct, IDequantizedStore
        where TDecoder : struct, IElementDecoder
    {
        int chunk = Grid.IdxX * Group.DimX + Group.IdxX;
        if (chunk >= chunksPerRow)
        {
            return;
        }

        int row = Grid.IdxY;
        long c = (long)row * chunksPerRow + chunk;
        int column = chunk * ChunkWidth;
        long groupA = (long)row * spec.SegmentsPerRow + (column >> groupShift);
        long groupB = (long)row * spec.SegmentsPerRow + ((column + 16) >> groupShift);
        bool asymmetric = spec.Element == GpuElementKind.IntegerAsymmetric;
        float g = spec.ScaleKind == GpuScaleKind.Nvfp4 ? tensorScale[0] : 1f;
        // NVFP4 decodes as element · (block scale · g), the product rounded first, as the CPU does.
        float scaleA = spec.ScaleKind == GpuScaleKind.Nvfp4 ? scales[groupA] * g : scales[groupA];
        float scaleB = spec.ScaleKind == GpuScaleKind.Nvfp4 ? scales[groupB] * g : scales[groupB];
        int zeroA = asymmetric ? zeros[groupA] : 0;
        int zeroB = asymmetric ? zeros[groupB] : 0;
        float subnormalUnit = GpuFormatSpec.PowerOfTwo(spec.MinNormalExponent - spec.MantissaBits);
        TStore store = default;
        if (spec.CodeBits == 8)
        {
            Float4 first = packed[2 * c], second = packed[2 * c + 1];
            store.Store(destination, 4 * c, Decode<TDecoder>(Word(first.X), Word(first.Y), scaleA, zeroA, subnormalUnit, spec));
            store.Store(destination, 4 * c + 1, Decode<TDecoder>(Word(first.Z), Word(first.W), scaleA, zeroA, subnormalUnit, spec));
            store.Store(destination, 4 * c + 2, Decode<TDecoder>(Word(second.X), Word(second.Y), scaleB, zeroB, subnormalUnit, spec));
            store.Store(destination, 4 * c + 3, Decode<TDecoder>(Word(second.Z), Word(second.W), scaleB, zeroB, subnormalUnit, spec));
        }
        else
        {
            Float4 codes = packed[c];
            store.Store(destination, 4 * c, Decode<TDecoder>(Word(codes.X), 0, scaleA, zeroA, subnormalUnit, spec));
            store.Store(destination, 4 * c + 1, Decode<TDecoder>(Word(codes.Y), 0, scaleA, zeroA, subnormalUnit, spec));
            store.Store(destination, 4 * c + 2, Decode<TDecoder>(Word(codes.Z), 0, scaleB, zeroB, subnormalUnit, spec));
            store.Store(destination, 4 * c + 3, Decode<TDecoder>(Word(codes.W), 0, scaleB, zeroB, subnormalUnit, spec));
        }
    }

    private static int Word(float lane) => BitConverter.SingleToInt32Bits(lane);

    /// <summary>Eight codes: bytes of <paramref name="low"/> then <paramref name="high"/>, or the eight nibbles of <paramref name="low"/>.</summary>
    private static Octet Decode<TDecoder>(int low, int high, float scale, int zero, float subnormalUnit, GpuFormatSpec spec)
        where TDecoder : struct, IElementDecoder
    {
        TDecoder d = default;
        if (spec.CodeBits == 8)
        {
            return new Octet
            {
                V0 = d.Decode(low & 0xFF, scale, zero, subnormalUnit, spec), V1 = d.Decode((low >> 8) & 0xFF, scale, zero, subnormalUnit, spec),
                V2 = d.Decode((low >> 16) & 0xFF, scale, zero, subnormalUnit, spec), V3 = d.Decode((low >> 24) & 0xFF, scale, zero, subnormalUnit, spec),
                V4 = d.Decode(high & 0xFF, scale, zero, subnormalUnit, spec), V5 = d.Decode((high >> 8) & 0xFF, scale, zero, subnormalUnit, spec),
                V6 = d.Decode((high >> 16) & 0xFF, scale, zero, subnormalUnit, spec), V7 = d.Decode((high >> 24) & 0xFF, scale, zero, subnormalUnit, spec),
            };
        }

        return new Octet
        {
            V0 = d.Decode(low & 0xF, scale, zero, subnormalUnit, spec), V1 = d.Decode((low >> 4) & 0xF, scale, zero, subnormalUnit, spec),
            V2 = d.Decode((low >> 8) & 0xF, scale, zero, subnormalUnit, spec), V3 = d.Decode((low >> 12) & 0xF, scale, zero, subnormalUnit, spec),
            V4 = d.Decode((low >> 16) & 0xF, scale, zero, subnormalUnit, spec), V5 = d.Decode((low >> 20) & 0xF, scale, zero, subnormalUnit, spec),
            V6 = d.Decode((low >> 24) & 0xF, scale, zero, subnormalUnit, spec), V7 = d.Decode((low >> 28) & 0xF, scale, zero, subnormalUnit, spec),
        };
    }
}
