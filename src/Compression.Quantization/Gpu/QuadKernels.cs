// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.InteropServices;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>Sixteen bytes (four float32 weights, eight BF16 weights or packed codes): one 16-byte load or store (ld/st.global.v4.f32 on CUDA).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Float4
{
    public float X;
    public float Y;
    public float Z;
    public float W;
}

/// <summary>
/// The bandwidth kernels of round-to-nearest quantization. Weights arrive eight at a time (an <see cref="Octet"/>:
/// two 16-byte loads of float32, or one of BF16, through the <see cref="IWeightLoader"/> each kernel is generic over) and leave
/// as one store of their eight codes (8 bytes of int8/FP8 codes, 4 bytes of nibbles), so a warp moves 512 or 1024
/// bytes in and 256 or 128 bytes out per instruction pair; no thread divides an index. The arithmetic is that of
/// <see cref="QuantizeKernels"/> (IEEE division x / s: PTX div.rn.f32), so the results equal the CPU path's, and a
/// BF16 weight gives the codes of its exact float32 widening.
/// </summary>
/// <remarks>
/// Preconditions, checked by the host: columns divisible by 8 (and by the group width for <see cref="GroupSixteens"/>),
/// float32 scales, saturating elements, finite weights, 16-byte aligned views.
/// </remarks>
internal static class QuadKernels
{
    /// <summary>Octets each thread of <see cref="RowOctets"/> keeps in registers.</summary>
    public const int OctetsInRegisters = 4;

    /// <summary>
    /// Per-channel: one thread group per row, at most <see cref="OctetsInRegisters"/> octets per thread (the host
    /// sizes the group so, up to 1024 threads: 32768 columns). Each thread issues its loads back to back and keeps
    /// the values in registers while the group reduces the row's statistics (warp shuffles, then shared memory), then
    /// encodes them: DRAM and L2 see the row once, and each thread has four to eight 16-byte loads in flight. Octets
    /// past the registers (wider rows) are read twice, the second time from cache.
    /// </summary>
    /// <remarks>Lanes past the row's end hold zeros: harmless, since max |w| ignores them and the asymmetric range is
    /// [min(min, 0), max(max, 0)] anyway.</remarks>
    public static void RowOctets<TLoader, TEncoder>(ArrayView<Float4> weight, ArrayView<float> scales, ArrayView<byte> zeros, ArrayView<ulong> packed8,
        ArrayView<uint> packed4, GpuFormatSpec spec, int octetsPerRow)
        where TLoader : struct, IWeightLoader
        where TEncoder : struct, IElementEncoder
    {
        int row = Grid.IdxX;
        int thread = Group.IdxX;
        int threads = Group.DimX;
        long first = (long)row * octetsPerRow;
        TLoader loader = default;
        int q0 = thread, q1 = thread + threads, q2 = thread + 2 * threads, q3 = thread + 3 * threads;
        Octet o0 = q0 < octetsPerRow ? loader.Load(weight, first + q0) : default;
        Octet o1 = q1 < octetsPerRow ? loader.Load(weight, first + q1) : default;
        Octet o2 = q2 < octetsPerRow ? loader.Load(weight, first + q2) : default;
        Octet o3 = q3 < octetsPerRow ? loader.Load(weight, first + q3) : default;
        float absMax = MathF.Max(MathF.Max(o0.AbsMax(), o1.AbsMax()), MathF.Max(o2.AbsMax(), o3.AbsMax()));
        float min = MathF.Min(MathF.Min(o0.Min(), o1.Min()), MathF.Min(o2.Min(), o3.Min()));
        float max = MathF.Max(MathF.Max(o0.Max(), o1.Max()), MathF.Max(o2.Max(), o3.Max()));
        for (int q = thread + OctetsInRegisters * threads; q < octetsPerRow; q += threads)
        {
            Octet o = loader.Load(weight, first + q);
            absMax = MathF.Max(absMax, o.AbsMax());
            min = MathF.Min(min, o.Min());
            max = MathF.Max(max, o.Max());
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
        StoreOctet<TEncoder>(q0 < octetsPerRow, first + q0, o0, scale, reciprocal, zero, packed8, packed4, spec);
        StoreOctet<TEncoder>(q1 < octetsPerRow, first + q1, o1, scale, reciprocal, zero, packed8, packed4, spec);
        StoreOctet<TEncoder>(q2 < octetsPerRow, first + q2, o2, scale, reciprocal, zero, packed8, packed4, spec);
        StoreOctet<TEncoder>(q3 < octetsPerRow, first + q3, o3, scale, reciprocal, zero, packed8, packed4, spec);
        for (int q = thread + OctetsInRegisters * threads; q < octetsPerRow; q += threads)
        {
            StoreOctet<TEncoder>(true, first + q, loader.Load(weight, first + q), scale, reciprocal, zero, packed8, packed4, spec);
        }
    }

    /// <summary>Eight codes into one store: 8 bytes, or 8 nibbles in 4 bytes (little-endian, as BitPacker).</summary>
    private static void StoreOctet<TEncoder>(bool inside, long octet, Octet o, float divisor, float reciprocal, int zero, ArrayView<ulong> packed8,
        ArrayView<uint> packed4, GpuFormatSpec spec)
        where TEncoder : struct, IElementEncoder
    {
        if (!inside)
        {
            return;
        }

        ulong codes = Pack<TEncoder>(o, divisor, reciprocal, zero, spec);
        if (spec.CodeBits == 8)
        {
            packed8[octet] = codes;
        }
        else
        {
            packed4[octet] = (uint)codes;
        }
    }

    /// <summary>
    /// Row-local groups of 16, 32, 64 or 128 weights (MX, NVFP4, per-group integer and FP): one thread per sixteen
    /// consecutive weights (two octets: four 16-byte loads of float32 or two of BF16, one or two 8-byte stores), so a
    /// group's scale, reciprocal and shuffles are paid once per sixteen weights (on an H100 this beat eight per thread
    /// by 10–15%); the group's lanes (1 to 8 consecutive ones, inside one warp) reduce its absmax by butterfly
    /// shuffles. Groups are numbered row-major, so sixteen h belongs to group h / (width / 16) and its codes start at
    /// byte h · 2 · bits. Launch a multiple of 32 threads; the extra ones only take part in the shuffles.
    /// </summary>
    public static void GroupSixteens<TLoader, TEncoder>(Index1D index, ArrayView<Float4> weight, ArrayView<float> scales, ArrayView<float> tensorScale,
        ArrayView<ulong> packed, GpuFormatSpec spec, int sixteens)
        where TLoader : struct, IWeightLoader
        where TEncoder : struct, IElementEncoder
    {
        int h = index;
        bool inside = h < sixteens;
        TLoader loader = default;
        Octet a = inside ? loader.Load(weight, 2L * h) : default;
        Octet b = inside ? loader.Load(weight, 2L * h + 1) : default;
        float absMax = MathF.Max(a.AbsMax(), b.AbsMax());
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
        ulong first = Pack<TEncoder>(a, divisor, reciprocal, 0, spec);
        ulong second = Pack<TEncoder>(b, divisor, reciprocal, 0, spec);
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

    /// <summary>Eight codes packed little-endian: eight bytes, or eight nibbles in the low 32 bits. A zero divisor (an
    /// all-zero group) is tested once here, not per weight.</summary>
    private static ulong Pack<TEncoder>(Octet o, float divisor, float reciprocal, int zero, GpuFormatSpec spec)
        where TEncoder : struct, IElementEncoder
    {
        TEncoder e = default;
        int c0, c1, c2, c3, c4, c5, c6, c7;
        if (divisor == 0)
        {
            c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = e.ZeroDivisorCode(zero, spec);
        }
        else
        {
            c0 = e.Encode(o.V0, divisor, reciprocal, zero, spec);
            c1 = e.Encode(o.V1, divisor, reciprocal, zero, spec);
            c2 = e.Encode(o.V2, divisor, reciprocal, zero, spec);
            c3 = e.Encode(o.V3, divisor, reciprocal, zero, spec);
            c4 = e.Encode(o.V4, divisor, reciprocal, zero, spec);
            c5 = e.Encode(o.V5, divisor, reciprocal, zero, spec);
            c6 = e.Encode(o.V6, divisor, reciprocal, zero, spec);
            c7 = e.Encode(o.V7, divisor, reciprocal, zero, spec);
        }

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
    /// max |w| of the whole weight into <paramref name="result"/>[0] (which must start at 0): each thread takes two
    /// octets per grid-stride step (four 16-byte loads of float32 in flight), then warp shuffles, shared memory and
    /// one atomic per thread group. Non-negative floats order like their bit patterns, so an integer atomic max is the
    /// float max, and max is exact in any order.
    /// </summary>
    public static void TensorAbsMax<TLoader>(ArrayView<Float4> weight, ArrayView<int> result, int octets)
        where TLoader : struct, IWeightLoader
    {
        TLoader loader = default;
        int stride = Grid.DimX * Group.DimX;
        float absMax = 0;
        int o = Grid.GlobalIndex.X;
        for (; o + stride < octets; o += 2 * stride)
        {
            Octet a = loader.Load(weight, o), b = loader.Load(weight, o + stride);
            absMax = MathF.Max(absMax, MathF.Max(a.AbsMax(), b.AbsMax()));
        }

        if (o < octets)
        {
            absMax = MathF.Max(absMax, loader.Load(weight, o).AbsMax());
        }

        for (int mask = Warp.WarpSize / 2; mask >= 1; mask /= 2)
        {
            absMax = MathF.Max(absMax, Warp.ShuffleXor(absMax, mask));
        }

        ArrayView<float> shared = SharedMemory.Allocate<float>(32);
        if (Warp.LaneIdx == 0)
        {
            shared[Warp.WarpIdx] = absMax;
        }

        Group.Barrier();
        if (Group.IdxX == 0)
        {
            for (int w = 1; w < Group.DimX / Warp.WarpSize; w++)
            {
                absMax = MathF.Max(absMax, shared[w]);
            }

            Atomic.Max(ref result[0], BitConverter.SingleToInt32Bits(absMax));
        }
    }

    /// <summary>One thread: the NVFP4 tensor scale g = amax / (448·6) from the bits <see cref="TensorAbsMax"/> left.</summary>
    public static void TensorScaleFromBits(Index1D index, ArrayView<int> absMaxBits, ArrayView<float> tensorScale) =>
        tensorScale[0] = BitConverter.Int32BitsToSingle(absMaxBits[0]) / (448f * 6f);

    /// <summary>
    /// Round half to even of |y| ≤ 2^22: adding 1.5·2^23 leaves a float whose ulp is 1, so the addition itself rounds
    /// half to even, and the subtraction is exact. Every GPU kernel rounds with this: ILGPU 1.5 lowers MathF.Round to a
    /// long bit sequence that, on an H100, rounded −1.5 to −1 (GpuBench caught one such code in 1.5 million).
    /// </summary>
    internal static float RoundHalfEven(float y) => y + 12582912f - 12582912f;
}
