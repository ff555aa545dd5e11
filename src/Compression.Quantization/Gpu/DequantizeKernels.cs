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
    /// <summary>Values per 16-byte word of the output: 4 (float32) or 8 (BF16).</summary>
    int Width { get; }

    /// <summary>Writes values <c>Width·unit … Width·unit + Width − 1</c> of the output: one 16-byte store (the first
    /// <see cref="Width"/> values of <paramref name="values"/>).</summary>
    void Store(ArrayView<Float4> words, long unit, Octet values);
}

/// <summary>float32 output: the decoded values themselves.</summary>
internal readonly struct Float32Store : IDequantizedStore
{
    public int Width => 4;

    public void Store(ArrayView<Float4> words, long unit, Octet v) => words[unit] = new Float4 { X = v.V0, Y = v.V1, Z = v.V2, W = v.V3 };
}

/// <summary>
/// BF16 output: each value rounded as <c>NumericConversions.SingleToBFloat16Bits</c> does (nearest, ties to even;
/// NaN to a quiet NaN), two to a 32-bit lane, the first in the low half. The lanes travel as float bits only to share
/// <see cref="Float4"/>'s vector store.
/// </summary>
internal readonly struct BFloat16Store : IDequantizedStore
{
    public int Width => 8;

    public void Store(ArrayView<Float4> words, long unit, Octet v) =>
        words[unit] = new Float4 { X = Pair(v.V0, v.V1), Y = Pair(v.V2, v.V3), Z = Pair(v.V4, v.V5), W = Pair(v.V6, v.V7) };

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
/// scales of row-local groups). The output is cut into 16-byte units (4 float32 or 8 BF16 values); every thread
/// decodes 32 codes as 8 or 4 units, and in step k the threads of a group take consecutive units, so each store
/// instruction of a warp writes 512 contiguous bytes and each code load reads contiguous bytes. All loads of a thread
/// (codes and scales) are issued before any decoding. Rows are the grid's y dimension and a group's index is a shift
/// of the column, so no thread divides. Each value is computed by the <see cref="IElementDecoder"/> the kernel is
/// compiled for, with the operations of <see cref="QuantizeKernels.DecodeValue"/> (the CPU's decoding), so the
/// float32 output equals <c>QuantizedTensor.Decompress()</c> bit for bit and the BF16 output its round-to-nearest-even
/// conversion.
/// </summary>
internal static class DequantizeKernels
{
    /// <summary>Codes per thread.</summary>
    public const int ChunkWidth = 32;

    /// <summary>
    /// Decodes units <c>Grid.IdxX · Group.DimX · K + k · Group.DimX + Group.IdxX</c> (k &lt; K = 32 / Width) of row
    /// <c>Grid.IdxY</c>. The group of column j is <c>row · SegmentsPerRow + (j &gt;&gt; groupShift)</c>: groupShift is
    /// log2 of a group width of 16 to 128, or 30 for per-channel scales (one segment per row). <paramref name="packed"/>
    /// holds the codes as 32-bit words.
    /// </summary>
    public static void Chunks<TStore, TDecoder>(ArrayView<uint> packed, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<float> tensorScale,
        ArrayView<Float4> destination, GpuFormatSpec spec, int chunksPerRow, int groupShift)
        where TStore : struct, IDequantizedStore
        where TDecoder : struct, IElementDecoder
    {
        TStore store = default;
        int width = store.Width;
        int perThread = ChunkWidth / width;
        int unitsPerRow = chunksPerRow * perThread;
        int threads = Group.DimX;
        int row = Grid.IdxY;
        int first = Grid.IdxX * threads * perThread + Group.IdxX;
        long rowUnit = (long)row * unitsPerRow;
        float g = spec.ScaleKind == GpuScaleKind.Nvfp4 ? tensorScale[0] : 1f;
        float subnormalUnit = GpuFormatSpec.PowerOfTwo(spec.MinNormalExponent - spec.MantissaBits);
        Unit u0 = Load(0, first, threads, perThread, unitsPerRow, rowUnit, row, width, packed, scales, zeros, g, spec, groupShift);
        Unit u1 = Load(1, first, threads, perThread, unitsPerRow, rowUnit, row, width, packed, scales, zeros, g, spec, groupShift);
        Unit u2 = Load(2, first, threads, perThread, unitsPerRow, rowUnit, row, width, packed, scales, zeros, g, spec, groupShift);
        Unit u3 = Load(3, first, threads, perThread, unitsPerRow, rowUnit, row, width, packed, scales, zeros, g, spec, groupShift);
        Unit u4 = Load(4, first, threads, perThread, unitsPerRow, rowUnit, row, width, packed, scales, zeros, g, spec, groupShift);
        Unit u5 = Load(5, first, threads, perThread, unitsPerRow, rowUnit, row, width, packed, scales, zeros, g, spec, groupShift);
        Unit u6 = Load(6, first, threads, perThread, unitsPerRow, rowUnit, row, width, packed, scales, zeros, g, spec, groupShift);
        Unit u7 = Load(7, first, threads, perThread, unitsPerRow, rowUnit, row, width, packed, scales, zeros, g, spec, groupShift);
        Write<TStore, TDecoder>(u0, destination, subnormalUnit, spec);
        Write<TStore, TDecoder>(u1, destination, subnormalUnit, spec);
        Write<TStore, TDecoder>(u2, destination, subnormalUnit, spec);
        Write<TStore, TDecoder>(u3, destination, subnormalUnit, spec);
        Write<TStore, TDecoder>(u4, destination, subnormalUnit, spec);
        Write<TStore, TDecoder>(u5, destination, subnormalUnit, spec);
        Write<TStore, TDecoder>(u6, destination, subnormalUnit, spec);
        Write<TStore, TDecoder>(u7, destination, subnormalUnit, spec);
    }

    /// <summary>One output unit's codes and group parameters, loaded; <see cref="Index"/> is −1 when there is none.</summary>
    private struct Unit
    {
        public long Index;
        public int Low;
        public int High;
        public float Scale;
        public int Zero;
    }

    /// <summary>Step <paramref name="k"/> of a thread: its unit's codes (Width codes: 4 or 8 bytes, or 2 or 4 bytes of
    /// nibbles), scale (NVFP4: block scale · g, the product rounded first as the CPU does) and zero point.</summary>
    private static Unit Load(int k, int first, int threads, int perThread, int unitsPerRow, long rowUnit, int row, int width, ArrayView<uint> packed,
        ArrayView<float> scales, ArrayView<byte> zeros, float g, GpuFormatSpec spec, int groupShift)
    {
        int u = first + k * threads;
        if (k >= perThread || u >= unitsPerRow)
        {
            return new Unit { Index = -1 };
        }

        long unit = rowUnit + u;
        long group = (long)row * spec.SegmentsPerRow + ((u * width) >> groupShift);
        int low, high = 0;
        if (spec.CodeBits == 8)
        {
            // Width 4: one word of four byte codes; width 8: two.
            low = (int)packed[width == 4 ? unit : 2 * unit];
            high = width == 4 ? 0 : (int)packed[2 * unit + 1];
        }
        else
        {
            // Width 8: one word of eight nibbles; width 4: the half word holding four.
            low = width == 8 ? (int)packed[unit] : (int)(packed[unit >> 1] >> (int)((unit & 1) * 16));
        }

        float scale = spec.ScaleKind == GpuScaleKind.Nvfp4 ? scales[group] * g : scales[group];
        int zero = spec.Element == GpuElementKind.IntegerAsymmetric ? zeros[group] : 0;
        return new Unit { Index = unit, Low = low, High = high, Scale = scale, Zero = zero };
    }

    private static void Write<TStore, TDecoder>(Unit unit, ArrayView<Float4> destination, float subnormalUnit, GpuFormatSpec spec)
        where TStore : struct, IDequantizedStore
        where TDecoder : struct, IElementDecoder
    {
        if (unit.Index >= 0)
        {
            TStore store = default;
            store.Store(destination, unit.Index, Decode<TDecoder>(unit.Low, unit.High, unit.Scale, unit.Zero, subnormalUnit, spec));
        }
    }

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
