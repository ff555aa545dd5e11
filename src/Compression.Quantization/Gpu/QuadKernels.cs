// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.InteropServices;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>Four consecutive float32 weights: one 16-byte load (ld.global.v4.f32 on CUDA).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Float4
{
    public float X;
    public float Y;
    public float Z;
    public float W;
}

/// <summary>
/// The bandwidth kernels of round-to-nearest quantization: every thread takes four consecutive weights with one
/// 16-byte load and writes their four codes with one store (4 bytes of int8/FP8 codes, 2 bytes of nibbles), so a warp
/// moves 512 bytes in and 128 or 64 bytes out per instruction (four such loads per thread in the group kernel); no
/// thread divides an index. The arithmetic is that of
/// <see cref="QuantizeKernels"/> (IEEE division x / s: PTX div.rn.f32, whose fast path is already a reciprocal with
/// one fused correction), so the results equal the CPU path's.
/// </summary>
/// <remarks>
/// Preconditions, checked by the host: columns divisible by 4 (and by the group width for <see cref="GroupSixteens"/>),
/// float32 scales, saturating elements, finite weights.
/// </remarks>
internal static class QuadKernels
{
    /// <summary>Threads per row in <see cref="RowQuads"/> (a multiple of the warp size).</summary>
    public const int RowThreads = 256;

    /// <summary>
    /// Per-channel: one thread group per row. The group reduces the row's statistics (warp shuffles, then shared
    /// memory), every thread derives the same scale, then each encodes its quads: the row is read twice, the second
    /// time from cache, so DRAM sees it once.
    /// </summary>
    public static void RowQuads(ArrayView<Float4> weight, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<uint> packed8,
        ArrayView<ushort> packed4, GpuFormatSpec spec, int quadsPerRow)
    {
        int row = Grid.IdxX;
        int thread = Group.IdxX;
        int threads = Group.DimX;
        long first = (long)row * quadsPerRow;
        float absMax = 0, min = float.PositiveInfinity, max = float.NegativeInfinity;
        for (int q = thread; q < quadsPerRow; q += threads)
        {
            Float4 v = weight[first + q];
            absMax = MathF.Max(absMax, MathF.Max(MathF.Max(MathF.Abs(v.X), MathF.Abs(v.Y)), MathF.Max(MathF.Abs(v.Z), MathF.Abs(v.W))));
            min = MathF.Min(min, MathF.Min(MathF.Min(v.X, v.Y), MathF.Min(v.Z, v.W)));
            max = MathF.Max(max, MathF.Max(MathF.Max(v.X, v.Y), MathF.Max(v.Z, v.W)));
        }

        for (int mask = Warp.WarpSize / 2; mask >= 1; mask /= 2)
        {
            absMax = MathF.Max(absMax, Warp.ShuffleXor(absMax, mask));
            min = MathF.Min(min, Warp.ShuffleXor(min, mask));
            max = MathF.Max(max, Warp.ShuffleXor(max, mask));
        }

        ArrayView<float> sharedAbs = SharedMemory.Allocate<float>(32);
        ArrayView<float> sharedMin = SharedMemory.Allocate<float>(32);
        ArrayView<float> sharedMax = SharedMemory.Allocate<float>(32);
        if (Warp.LaneIdx == 0)
        {
            sharedAbs[Warp.WarpIdx] = absMax;
            sharedMin[Warp.WarpIdx] = min;
            sharedMax[Warp.WarpIdx] = max;
        }

        Group.Barrier();
        int warps = threads / Warp.WarpSize;
        absMax = sharedAbs[0];
        min = sharedMin[0];
        max = sharedMax[0];
        for (int w = 1; w < warps; w++)
        {
            absMax = MathF.Max(absMax, sharedAbs[w]);
            min = MathF.Min(min, sharedMin[w]);
            max = MathF.Max(max, sharedMax[w]);
        }

        float scale = QuantizeKernels.ScaleOf(absMax, min, max, spec, 1f, out int zero);
        if (thread == 0)
        {
            scales[row] = scale;
            if (spec.Element == GpuElementKind.IntegerAsymmetric)
            {
                zeros[row] = (byte)zero;
            }
        }

        float reciprocal = 1f / scale;
        for (int q = thread; q < quadsPerRow; q += threads)
        {
            Float4 v = weight[first + q];
            Store(first + q, Encode(v.X, scale, reciprocal, zero, spec), Encode(v.Y, scale, reciprocal, zero, spec),
                Encode(v.Z, scale, reciprocal, zero, spec), Encode(v.W, scale, reciprocal, zero, spec), packed8, packed4, spec);
        }
    }

    /// <summary>
    /// Row-local groups of 16, 32, 64 or 128 weights (MX, NVFP4, per-group integer and FP): one thread per sixteen
    /// consecutive weights (four 16-byte loads, one or two 8-byte stores), so a group's scale, reciprocal and shuffles
    /// are paid once per sixteen weights (on an H100 this beat eight per thread by 10–15%); the group's lanes (1 to 8
    /// consecutive ones, inside one warp) reduce its absmax by butterfly shuffles. Groups are numbered row-major, so
    /// sixteen h belongs to group h / (width / 16) and its codes start at byte h · 2 · bits. Launch a multiple of 32
    /// threads; the extra ones only take part in the shuffles.
    /// </summary>
    public static void GroupSixteens(Index1D index, ArrayView<Float4> weight, ArrayView<float> scales, ArrayView<float> tensorScale,
        ArrayView<ulong> packed, GpuFormatSpec spec, int sixteens)
    {
        int h = index;
        bool inside = h < sixteens;
        Float4 a = inside ? weight[4L * h] : default;
        Float4 b = inside ? weight[4L * h + 1] : default;
        Float4 c = inside ? weight[4L * h + 2] : default;
        Float4 d = inside ? weight[4L * h + 3] : default;
        float absMax = MathF.Max(MathF.Max(MaxAbs(a), MaxAbs(b)), MathF.Max(MaxAbs(c), MaxAbs(d)));
        int lanes = spec.SegmentWidth / 16;
        for (int mask = lanes / 2; mask >= 1; mask /= 2)
        {
            absMax = MathF.Max(absMax, Warp.ShuffleXor(absMax, mask));
        }

        float g = spec.ScaleKind == GpuScaleKind.Nvfp4 ? tensorScale[0] : 1f;
        float scale = QuantizeKernels.ScaleOf(absMax, 0, 0, spec, g, out _);
        if (!inside)
        {
            return;
        }

        if ((h & (lanes - 1)) == 0)
        {
            scales[h / lanes] = scale;
        }

        float divisor = spec.ScaleKind == GpuScaleKind.Nvfp4 ? scale * g : scale;
        float reciprocal = 1f / divisor;
        ulong first = Pack(a, b, divisor, reciprocal, spec);
        ulong second = Pack(c, d, divisor, reciprocal, spec);
        if (spec.CodeBits == 8)
        {
            packed[2L * h] = first;
            packed[2L * h + 1] = second;
        }
        else
        {
            packed[h] = first | (second << 32);
        }
    }

    private static float MaxAbs(Float4 v) => MathF.Max(MathF.Max(MathF.Abs(v.X), MathF.Abs(v.Y)), MathF.Max(MathF.Abs(v.Z), MathF.Abs(v.W)));

    /// <summary>Eight codes packed little-endian: eight bytes, or eight nibbles in the low 32 bits.</summary>
    private static ulong Pack(Float4 a, Float4 b, float divisor, float reciprocal, GpuFormatSpec spec)
    {
        int c0 = Encode(a.X, divisor, reciprocal, 0, spec), c1 = Encode(a.Y, divisor, reciprocal, 0, spec);
        int c2 = Encode(a.Z, divisor, reciprocal, 0, spec), c3 = Encode(a.W, divisor, reciprocal, 0, spec);
        int c4 = Encode(b.X, divisor, reciprocal, 0, spec), c5 = Encode(b.Y, divisor, reciprocal, 0, spec);
        int c6 = Encode(b.Z, divisor, reciprocal, 0, spec), c7 = Encode(b.W, divisor, reciprocal, 0, spec);
        if (spec.CodeBits == 8)
        {
            uint low = (uint)((c0 & 0xFF) | ((c1 & 0xFF) << 8) | ((c2 & 0xFF) << 16) | ((c3 & 0xFF) << 24));
            uint high = (uint)((c4 & 0xFF) | ((c5 & 0xFF) << 8) | ((c6 & 0xFF) << 16) | ((c7 & 0xFF) << 24));
            return low | ((ulong)high << 32);
        }

        return (uint)((c0 & 0xF) | ((c1 & 0xF) << 4) | ((c2 & 0xF) << 8) | ((c3 & 0xF) << 12) |
                      ((c4 & 0xF) << 16) | ((c5 & 0xF) << 20) | ((c6 & 0xF) << 24)) | ((uint)(c7 & 0xF) << 28);
    }

    /// <summary>
    /// max |w| of the whole weight into <paramref name="result"/>[0] (which must start at 0): grid-stride quads, warp
    /// shuffles, one atomic per warp. Non-negative floats order like their bit patterns, so an integer atomic max is
    /// the float max, and max is exact in any order.
    /// </summary>
    public static void TensorAbsMax(ArrayView<Float4> weight, ArrayView<int> result, int quads)
    {
        float absMax = 0;
        for (int q = Grid.GlobalIndex.X; q < quads; q += Grid.DimX * Group.DimX)
        {
            Float4 v = weight[q];
            absMax = MathF.Max(absMax, MathF.Max(MathF.Max(MathF.Abs(v.X), MathF.Abs(v.Y)), MathF.Max(MathF.Abs(v.Z), MathF.Abs(v.W))));
        }

        for (int mask = Warp.WarpSize / 2; mask >= 1; mask /= 2)
        {
            absMax = MathF.Max(absMax, Warp.ShuffleXor(absMax, mask));
        }

        if (Warp.LaneIdx == 0)
        {
            Atomic.Max(ref result[0], BitConverter.SingleToInt32Bits(absMax));
        }
    }

    /// <summary>One thread: the NVFP4 tensor scale g = amax / (448·6) from the bits <see cref="TensorAbsMax"/> left.</summary>
    public static void TensorScaleFromBits(Index1D index, ArrayView<int> absMaxBits, ArrayView<float> tensorScale) =>
        tensorScale[0] = BitConverter.Int32BitsToSingle(absMaxBits[0]) / (448f * 6f);

    /// <summary>Four codes into one store: a 32-bit word of bytes, or a 16-bit word of nibbles (little-endian, as BitPacker).</summary>
    private static void Store(long quad, int c0, int c1, int c2, int c3, ArrayView<uint> packed8, ArrayView<ushort> packed4, GpuFormatSpec spec)
    {
        if (spec.CodeBits == 8)
        {
            packed8[quad] = (uint)((c0 & 0xFF) | ((c1 & 0xFF) << 8) | ((c2 & 0xFF) << 16) | ((c3 & 0xFF) << 24));
        }
        else
        {
            packed4[quad] = (ushort)((c0 & 0xF) | ((c1 & 0xF) << 4) | ((c2 & 0xF) << 8) | ((c3 & 0xF) << 12));
        }
    }

    /// <summary>The code of one weight against <paramref name="divisor"/> (whose IEEE reciprocal is given).</summary>
    private static int Encode(float x, float divisor, float reciprocal, int zero, GpuFormatSpec spec)
    {
        switch (spec.Element)
        {
            case GpuElementKind.IntegerSymmetric:
                // clamp(round(y) + offset, low, high) = round(clamp(y, low − offset, high − offset)) + offset: the
                // bounds are integers and rounding is monotone, and the clamped value is small enough for RoundHalfEven.
                return divisor == 0 ? spec.Offset
                    : (int)RoundHalfEven(MathF.Min(MathF.Max(x / divisor, spec.Low - spec.Offset), spec.High - spec.Offset)) + spec.Offset;
            case GpuElementKind.IntegerAsymmetric:
                return divisor == 0 ? zero : (int)RoundHalfEven(MathF.Min(MathF.Max(x / divisor, -zero), spec.High - zero)) + zero;
            case GpuElementKind.MxInt8:
                // The divisor is a power of two: the product by its exact reciprocal is the quotient.
                return (int)RoundHalfEven(MathF.Min(MathF.Max(x * reciprocal * 64f, -127f), 127f)) & 0xFF;
            default:
                if (divisor == 0)
                {
                    return 0;
                }

                float y = spec.ScaleKind == GpuScaleKind.SharedExponent ? x * reciprocal : x / divisor;
                return GpuFormatSpec.EncodeMiniFloat(y, spec.MantissaBits, spec.Bias, spec.MinNormalExponent, spec.MaxCode, spec.SignBit);
        }
    }

    /// <summary>
    /// Round half to even of |y| ≤ 2^22: adding 1.5·2^23 leaves a float whose ulp is 1, so the addition itself rounds
    /// half to even, and the subtraction is exact. Every GPU kernel rounds with this: ILGPU 1.5 lowers MathF.Round to a
    /// long bit sequence that, on an H100, rounded −1.5 to −1 (GpuBench caught one such code in 1.5 million).
    /// </summary>
    internal static float RoundHalfEven(float y) => y + 12582912f - 12582912f;
}
