// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.InteropServices;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>Eight consecutive weights widened to float32, held in registers.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Octet
{
    public float V0;
    public float V1;
    public float V2;
    public float V3;
    public float V4;
    public float V5;
    public float V6;
    public float V7;

    /// <summary>max |v| over the eight (exact in any order).</summary>
    public readonly float AbsMax() => MathF.Max(
        MathF.Max(MathF.Max(MathF.Abs(V0), MathF.Abs(V1)), MathF.Max(MathF.Abs(V2), MathF.Abs(V3))),
        MathF.Max(MathF.Max(MathF.Abs(V4), MathF.Abs(V5)), MathF.Max(MathF.Abs(V6), MathF.Abs(V7))));

    /// <summary>min v over the eight.</summary>
    public readonly float Min() => MathF.Min(MathF.Min(MathF.Min(V0, V1), MathF.Min(V2, V3)), MathF.Min(MathF.Min(V4, V5), MathF.Min(V6, V7)));

    /// <summary>max v over the eight.</summary>
    public readonly float Max() => MathF.Max(MathF.Max(MathF.Max(V0, V1), MathF.Max(V2, V3)), MathF.Max(MathF.Max(V4, V5), MathF.Max(V6, V7)));
}

/// <summary>
/// How a bandwidth kernel reads weights of one element type: eight at a time, from a view of 16-byte words over the
/// weight (one <c>ld.global.v4</c> per word on CUDA). The kernels are generic over this struct, so float32 and BF16
/// inputs share one kernel body and ILGPU specialises each (a constrained call on a struct: no indirection).
/// </summary>
internal interface IWeightLoader
{
    /// <summary>Weights <c>8·octet … 8·octet + 7</c> as float32.</summary>
    Octet Load(ArrayView<Float4> words, long octet);
}

/// <summary>float32 weights: two 16-byte words per octet.</summary>
internal readonly struct Float32Loader : IWeightLoader
{
    public Octet Load(ArrayView<Float4> words, long octet)
    {
        Float4 a = words[2 * octet], b = words[2 * octet + 1];
        return new Octet { V0 = a.X, V1 = a.Y, V2 = a.Z, V3 = a.W, V4 = b.X, V5 = b.Y, V6 = b.Z, V7 = b.W };
    }
}

/// <summary>
/// BF16 weights (raw bits): one 16-byte word per octet, each 32-bit lane holding two weights, the first in its low
/// half (little-endian). Widening a BF16 is exact: its bits become the upper half of the float32. The lanes are
/// loaded as floats only to share <see cref="Float4"/>'s vector load; their bits are never used as floats (and since
/// the upper half is a finite BF16, they are never a NaN pattern either).
/// </summary>
internal readonly struct BFloat16Loader : IWeightLoader
{
    public Octet Load(ArrayView<Float4> words, long octet)
    {
        Float4 w = words[octet];
        int x = BitConverter.SingleToInt32Bits(w.X), y = BitConverter.SingleToInt32Bits(w.Y);
        int z = BitConverter.SingleToInt32Bits(w.Z), v = BitConverter.SingleToInt32Bits(w.W);
        return new Octet
        {
            V0 = Low(x), V1 = High(x), V2 = Low(y), V3 = High(y), V4 = Low(z), V5 = High(z), V6 = Low(v), V7 = High(v),
        };
    }

    private static float Low(int pair) => BitConverter.Int32BitsToSingle(pair << 16);

    private static float High(int pair) => BitConverter.Int32BitsToSingle(pair & unchecked((int)0xFFFF_0000));
}
