// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

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
/// moves 512 bytes in and 128 or 64 bytes out per instruction; no thread divides an index. The division x / s of
/// every weight is replaced by <see cref="Quotient"/>, which is bit-for-bit the IEEE quotient for a fraction of the
/// cost; everything else is the arithmetic of <see cref="QuantizeKernels"/>, so the results equal the CPU path's.
/// </summary>
/// <remarks>
/// Preconditions, checked by the host: columns divisible by 4 (and by the group width for <see cref="GroupQuads"/>),
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
    /// Row-local groups of 16, 32, 64 or 128 weights (MX, NVFP4, per-group integer and FP): one thread per quad, the
    /// group's lanes (4 to 32 consecutive ones, inside one warp) reduce its absmax by butterfly shuffles. Groups are
    /// numbered row-major, so quad q belongs to group q / (width / 4) and its codes start at byte q · 4 · bits / 8.
    /// Launch a multiple of 32 threads; the extra ones only take part in the shuffles.
    /// </summary>
    public static void GroupQuads(Index1D index, ArrayView<Float4> weight, ArrayView<float> scales, ArrayView<float> tensorScale,
        ArrayView<uint> packed8, ArrayView<ushort> packed4, GpuFormatSpec spec, int quads)
    {
        int q = index;
        bool inside = q < quads;
        Float4 v = inside ? weight[q] : default;
        float absMax = MathF.Max(MathF.Max(MathF.Abs(v.X), MathF.Abs(v.Y)), MathF.Max(MathF.Abs(v.Z), MathF.Abs(v.W)));
        int lanes = spec.SegmentWidth / 4;
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

        if ((q & (lanes - 1)) == 0)
        {
            scales[q / lanes] = scale;
        }

        float divisor = spec.ScaleKind == GpuScaleKind.Nvfp4 ? scale * g : scale;
        float reciprocal = 1f / divisor;
        Store(q, Encode(v.X, divisor, reciprocal, 0, spec), Encode(v.Y, divisor, reciprocal, 0, spec),
            Encode(v.Z, divisor, reciprocal, 0, spec), Encode(v.W, divisor, reciprocal, 0, spec), packed8, packed4, spec);
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
                return divisor == 0 ? spec.Offset
                    : (int)MathF.Min(MathF.Max(MathF.Round(Quotient(x, divisor, reciprocal)) + spec.Offset, spec.Low), spec.High);
            case GpuElementKind.IntegerAsymmetric:
                return divisor == 0 ? zero : (int)MathF.Min(MathF.Max(MathF.Round(Quotient(x, divisor, reciprocal)) + zero, 0), spec.High);
            case GpuElementKind.MxInt8:
                // The divisor is a power of two: the product by its exact reciprocal is the quotient.
                return (int)MathF.Min(MathF.Max(MathF.Round(x * reciprocal * 64f), -127f), 127f) & 0xFF;
            default:
                if (divisor == 0)
                {
                    return 0;
                }

                float y = spec.ScaleKind == GpuScaleKind.SharedExponent ? x * reciprocal : Quotient(x, divisor, reciprocal);
                return GpuFormatSpec.EncodeMiniFloat(y, spec.MantissaBits, spec.Bias, spec.MinNormalExponent, spec.MaxCode, spec.SignBit);
        }
    }

    /// <summary>
    /// RN(x / s) from r = RN(1/s) without a division: y = RN(x·r) is within an ulp of x/s, and one fused correction
    /// RN(y + r·RN(x − s·y)) is the correctly rounded quotient (Markstein; the remainder is exact while every operand
    /// stays in the normal range, which the range test ensures: outside it, divide). A zero quotient takes x's sign, as
    /// the division gives it.
    /// </summary>
    internal static float Quotient(float x, float s, float r)
    {
        float magnitude = MathF.Abs(x);
        if (!(s >= 8.6736174e-19f && s <= 1.1529215e18f) || (magnitude > 0 && magnitude < s * 9.094947e-13f) || magnitude > s * 1.2676506e30f)
        {
            return x / s;       // s outside [2^-60, 2^60], |x/s| below 2^-40 or above 2^100
        }

        float y = x * r;
        float q = Fma(Fma(-y, s, x), r, y);
        return BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(q) | (BitConverter.SingleToInt32Bits(x) & int.MinValue));
    }

    /// <summary>a·b + c with one rounding: PTX fma.rn.f32 on CUDA (ILGPU has no FMA intrinsic), .NET's FMA elsewhere.</summary>
    private static float Fma(float a, float b, float c)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("fma.rn.f32 %0, %1, %2, %3;", out float result, a, b, c);
            return result;
        }

        return MathF.FusedMultiplyAdd(a, b, c);
    }
}
