// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Compression.Quantization.Primitives;

/// <summary>Span kernels of integer quantization. The caller allocates; nothing here allocates or validates beyond lengths.</summary>
public static class IntegerPrimitives
{
    /// <summary>
    /// <c>codes[i] = clamp(round_half_even(x[i] / scale) + zero, low, high)</c>, or <c>zero</c> when <paramref name="scale"/>
    /// is 0 (an all-zero group: no division, no NaN).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="codes"/> is shorter than <paramref name="x"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Quantize(ReadOnlySpan<float> x, float scale, int zero, int low, int high, Span<byte> codes)
    {
        if (codes.Length < x.Length)
        {
            throw new ArgumentException($"Codes hold {codes.Length}; {x.Length} needed.", nameof(codes));
        }

        if (scale == 0)
        {
            codes[..x.Length].Fill((byte)zero);
            return;
        }

        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> s = Vector256.Create(scale), z = Vector256.Create((float)zero);
            Vector256<float> lo = Vector256.Create((float)low), hi = Vector256.Create((float)high);
            ref float source = ref MemoryMarshal.GetReference(x);
            ref byte target = ref MemoryMarshal.GetReference(codes);
            for (; i <= x.Length - 32; i += 32)
            {
                nuint n = (nuint)i;
                Vector256<int> a = Code(Vector256.LoadUnsafe(ref source, n), s, z, lo, hi);
                Vector256<int> b = Code(Vector256.LoadUnsafe(ref source, n + 8), s, z, lo, hi);
                Vector256<int> c = Code(Vector256.LoadUnsafe(ref source, n + 16), s, z, lo, hi);
                Vector256<int> d = Code(Vector256.LoadUnsafe(ref source, n + 24), s, z, lo, hi);
                Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, d)).AsByte().StoreUnsafe(ref target, n);
            }

            for (; i <= x.Length - 8; i += 8)
            {
                Vector256<short> half = Vector256.Narrow(Code(Vector256.LoadUnsafe(ref source, (nuint)i), s, z, lo, hi), Vector256<int>.Zero);
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref target, i), Vector256.Narrow(half, Vector256<short>.Zero).AsUInt64().ToScalar());
            }
        }

        for (; i < x.Length; i++)
        {
            codes[i] = (byte)Math.Clamp(MathF.Round(x[i] / scale, MidpointRounding.ToEven) + zero, low, high);
        }
    }

    /// <summary><c>destination[i] = (codes[i] − zero) · scale</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="codes"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Dequantize(ReadOnlySpan<byte> codes, float scale, int zero, Span<float> destination)
    {
        if (destination.Length < codes.Length)
        {
            throw new ArgumentException($"Destination holds {destination.Length}; {codes.Length} needed.", nameof(destination));
        }

        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> s = Vector256.Create(scale), z = Vector256.Create((float)zero);
            ref byte source = ref MemoryMarshal.GetReference(codes);
            ref float target = ref MemoryMarshal.GetReference(destination);
            for (; i <= codes.Length - 32; i += 32)
            {
                nuint n = (nuint)i;
                (Vector256<ushort> low, Vector256<ushort> high) = Vector256.Widen(Vector256.LoadUnsafe(ref source, n));
                (Vector256<uint> a, Vector256<uint> b) = Vector256.Widen(low);
                (Vector256<uint> c, Vector256<uint> d) = Vector256.Widen(high);
                ((Vector256.ConvertToSingle(a.AsInt32()) - z) * s).StoreUnsafe(ref target, n);
                ((Vector256.ConvertToSingle(b.AsInt32()) - z) * s).StoreUnsafe(ref target, n + 8);
                ((Vector256.ConvertToSingle(c.AsInt32()) - z) * s).StoreUnsafe(ref target, n + 16);
                ((Vector256.ConvertToSingle(d.AsInt32()) - z) * s).StoreUnsafe(ref target, n + 24);
            }
        }

        for (; i < codes.Length; i++)
        {
            destination[i] = ((float)codes[i] - zero) * scale;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Code(Vector256<float> x, Vector256<float> scale, Vector256<float> zero, Vector256<float> low, Vector256<float> high) =>
        Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(Vector256.Round(x / scale) + zero, low), high));
}
