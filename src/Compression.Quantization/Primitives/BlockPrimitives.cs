// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Compression.Quantization.Formats;

namespace Compression.Quantization.Primitives;

/// <summary>How a block format turns a block's absmax into its scale, and the scale into the element divisor.</summary>
internal interface IBlockScaleRule
{
    float Scale(float absMax, float tensorScale);

    float Divisor(float scale, float tensorScale);

    /// <summary>Whether divisors are powers of two (then multiplying by the reciprocal is exact and equal to dividing).</summary>
    bool DivisorIsPowerOfTwo { get; }

    /// <summary><see cref="Scale"/> of eight finite block maxima at once, equal lane for lane.</summary>
    Vector256<float> Scales(Vector256<float> absMax, float tensorScale);

    /// <summary><see cref="Divisor"/> of eight scales at once, equal lane for lane.</summary>
    Vector256<float> Divisors(Vector256<float> scales, float tensorScale);
}

/// <summary>
/// One pass over a row of a block-scaled small-float format (MX with FP elements, NVFP4): per block of 16 or 32,
/// absmax, scale and codes in registers, without a call per block. Bit-identical to the per-segment path (same
/// absmax, same scale rule, same encoder), which the scalar-reference tests hold it to.
/// </summary>
internal static class BlockPrimitives
{
    /// <summary>Quantizes a row; returns false, leaving the rest undone, at the first block holding NaN or ±∞.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static bool QuantizeRow<TRule>(ReadOnlySpan<float> row, int blockSize, MiniFloatCodec codec, TRule rule, float tensorScale,
        Span<float> scales, Span<byte> codes)
        where TRule : struct, IBlockScaleRule
    {
        int blocks = (row.Length + blockSize - 1) / blockSize;
        // The eight-block path writes codes and scales without bounds checks.
        if (codes.Length < row.Length || scales.Length < blocks)
        {
            throw new ArgumentException($"A row of {row.Length} needs {row.Length} codes and {blocks} scales; {codes.Length} and {scales.Length} given.", nameof(codes));
        }

        int vectorsPerBlock = blockSize / 8;
        bool vectorized = Vector256.IsHardwareAccelerated && (blockSize == 16 || blockSize == 32);
        var encoder = new MiniFloatPrimitives.VectorEncoder(codec);
        ref float source = ref MemoryMarshal.GetReference(row);
        ref byte target = ref MemoryMarshal.GetReference(codes);
        int b = 0;
        if (vectorized && Avx2.IsSupported)
        {
            b = EightBlocksAtATime(row, blockSize, encoder, rule, tensorScale, scales, codes);
            if (b < 0)
            {
                return false;
            }
        }

        for (; b < blocks; b++)
        {
            int start = b * blockSize;
            int length = Math.Min(blockSize, row.Length - start);
            if (!vectorized || length != blockSize)
            {
                ReadOnlySpan<float> x = row.Slice(start, length);
                float absMax = GroupStats.Of(x, StatisticsKind.AbsMax).AbsMax;
                if (!float.IsFinite(absMax))
                {
                    return false;
                }

                float scale = rule.Scale(absMax, tensorScale);
                scales[b] = scale;
                MiniFloatPrimitives.QuantizeFinite(codec, x, rule.Divisor(scale, tensorScale), saturate: true, codes.Slice(start, length));
                continue;
            }

            nuint n = (nuint)start;
            Vector256<float> v0 = Vector256.LoadUnsafe(ref source, n);
            Vector256<float> v1 = vectorsPerBlock > 1 ? Vector256.LoadUnsafe(ref source, n + 8) : Vector256<float>.Zero;
            Vector256<float> v2 = vectorsPerBlock > 2 ? Vector256.LoadUnsafe(ref source, n + 16) : Vector256<float>.Zero;
            Vector256<float> v3 = vectorsPerBlock > 3 ? Vector256.LoadUnsafe(ref source, n + 24) : Vector256<float>.Zero;
            Vector256<float> m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
            Vector256<float> notNaN = Vector256.Equals(v0, v0) & Vector256.Equals(v1, v1) & Vector256.Equals(v2, v2) & Vector256.Equals(v3, v3);
            Vector128<float> half = Vector128.Max(m.GetLower(), m.GetUpper());
            half = Vector128.Max(half, Vector128.Shuffle(half, Vector128.Create(2, 3, 0, 1)));
            half = Vector128.Max(half, Vector128.Shuffle(half, Vector128.Create(1, 0, 3, 2)));
            float blockMax = half.ToScalar();
            if (!float.IsFinite(blockMax) || notNaN.AsInt32() != Vector256<int>.AllBitsSet)
            {
                return false;
            }

            float blockScale = rule.Scale(blockMax, tensorScale);
            scales[b] = blockScale;
            float divisor = rule.Divisor(blockScale, tensorScale);
            if (divisor == 0)
            {
                codes.Slice(start, blockSize).Clear();
                continue;
            }

            Vector256<int> c0, c1, c2, c3;
            if (rule.DivisorIsPowerOfTwo)
            {
                // x / 2^e and x · 2^-e are the same exact scaling, rounded alike: multiply (the rule is a struct, so the
                // JIT drops the branch not taken).
                Vector256<float> reciprocal = Vector256.Create(1f / divisor);
                c0 = encoder.EncodeNotNaN(v0 * reciprocal);
                c1 = encoder.EncodeNotNaN(v1 * reciprocal);
                c2 = vectorsPerBlock == 4 ? encoder.EncodeNotNaN(v2 * reciprocal) : Vector256<int>.Zero;
                c3 = vectorsPerBlock == 4 ? encoder.EncodeNotNaN(v3 * reciprocal) : Vector256<int>.Zero;
            }
            else
            {
                Vector256<float> d = Vector256.Create(divisor);
                c0 = encoder.EncodeNotNaN(v0 / d);
                c1 = encoder.EncodeNotNaN(v1 / d);
                c2 = vectorsPerBlock == 4 ? encoder.EncodeNotNaN(v2 / d) : Vector256<int>.Zero;
                c3 = vectorsPerBlock == 4 ? encoder.EncodeNotNaN(v3 / d) : Vector256<int>.Zero;
            }

            if (vectorsPerBlock == 4)
            {
                Vector256.Narrow(Vector256.Narrow(c0, c1), Vector256.Narrow(c2, c3)).AsByte().StoreUnsafe(ref target, n);
            }
            else
            {
                Vector256<short> pair = Vector256.Narrow(c0, c1);
                Vector256.Narrow(pair, Vector256<short>.Zero).GetLower().AsByte().StoreUnsafe(ref target, n);
            }
        }

        return true;
    }

    /// <summary>
    /// The whole groups of eight blocks of a row: the eight block maxima are reduced together (a transposing
    /// reduction, 21 shuffles and maxima instead of eight horizontal reductions), the eight scales come from one vector
    /// rule, then each block is encoded against its broadcast divisor. Returns the number of blocks done (a multiple
    /// of 8), or −1 at a group holding NaN or ±∞.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static int EightBlocksAtATime<TRule>(ReadOnlySpan<float> row, int blockSize, MiniFloatPrimitives.VectorEncoder encoder, TRule rule,
        float tensorScale, Span<float> scales, Span<byte> codes)
        where TRule : struct, IBlockScaleRule
    {
        int vectorsPerBlock = blockSize / 8;
        int groups = row.Length / (8 * blockSize);
        ref float source = ref MemoryMarshal.GetReference(row);
        ref byte target = ref MemoryMarshal.GetReference(codes);
        ref float scaleTarget = ref MemoryMarshal.GetReference(scales);
        for (int g = 0; g < groups; g++)
        {
            nuint first = (nuint)(g * 8 * blockSize);
            Vector256<float> m0 = BlockMax(ref source, first, vectorsPerBlock);
            Vector256<float> m1 = BlockMax(ref source, first + (nuint)blockSize, vectorsPerBlock);
            Vector256<float> m2 = BlockMax(ref source, first + (nuint)(2 * blockSize), vectorsPerBlock);
            Vector256<float> m3 = BlockMax(ref source, first + (nuint)(3 * blockSize), vectorsPerBlock);
            Vector256<float> m4 = BlockMax(ref source, first + (nuint)(4 * blockSize), vectorsPerBlock);
            Vector256<float> m5 = BlockMax(ref source, first + (nuint)(5 * blockSize), vectorsPerBlock);
            Vector256<float> m6 = BlockMax(ref source, first + (nuint)(6 * blockSize), vectorsPerBlock);
            Vector256<float> m7 = BlockMax(ref source, first + (nuint)(7 * blockSize), vectorsPerBlock);
            // The reduction's float maxima are exact on these (possibly NaN-patterned) bits only while they are finite,
            // so test first: any lane at or above +∞'s pattern holds ∞ or NaN.
            Vector256<int> any = Vector256.Max(Vector256.Max(Vector256.Max(m0.AsInt32(), m1.AsInt32()), Vector256.Max(m2.AsInt32(), m3.AsInt32())),
                Vector256.Max(Vector256.Max(m4.AsInt32(), m5.AsInt32()), Vector256.Max(m6.AsInt32(), m7.AsInt32())));
            if (Vector256.GreaterThanOrEqualAny(any, Vector256.Create(0x7F80_0000)))
            {
                return -1;
            }

            Vector256<float> maxima = ReduceEight(m0, m1, m2, m3, m4, m5, m6, m7);
            Vector256<float> blockScales = rule.Scales(maxima, tensorScale);
            blockScales.StoreUnsafe(ref scaleTarget, (nuint)(g * 8));
            Vector256<float> divisors = rule.Divisors(blockScales, tensorScale);

            // Powers of two: the reciprocal is exact, so multiplying equals dividing; otherwise divide. (A division-free
            // quotient, one multiply and two fused multiply-adds after Markstein, gives the same bits but measured
            // slower than the divider on the cores we target.)
            Vector256<float> factors = rule.DivisorIsPowerOfTwo ? Vector256<float>.One / divisors : divisors;
            Vector256<int> zeroDivisor = Vector256.Equals(divisors, Vector256<float>.Zero).AsInt32();
            for (int k = 0; k < 8; k++)
            {
                Vector256<int> lane = Vector256.Create(k);
                Vector256<float> factor = Avx2.PermuteVar8x32(factors, lane);
                Vector256<int> keep = ~Avx2.PermuteVar8x32(zeroDivisor, lane);
                nuint n = first + (nuint)(k * blockSize);
                Vector256<int> c0 = keep & encoder.EncodeNotNaN(Scaled(Vector256.LoadUnsafe(ref source, n), factor, rule.DivisorIsPowerOfTwo));
                Vector256<int> c1 = keep & encoder.EncodeNotNaN(Scaled(Vector256.LoadUnsafe(ref source, n + 8), factor, rule.DivisorIsPowerOfTwo));
                if (vectorsPerBlock == 4)
                {
                    Vector256<int> c2 = keep & encoder.EncodeNotNaN(Scaled(Vector256.LoadUnsafe(ref source, n + 16), factor, rule.DivisorIsPowerOfTwo));
                    Vector256<int> c3 = keep & encoder.EncodeNotNaN(Scaled(Vector256.LoadUnsafe(ref source, n + 24), factor, rule.DivisorIsPowerOfTwo));
                    Vector256.Narrow(Vector256.Narrow(c0, c1), Vector256.Narrow(c2, c3)).AsByte().StoreUnsafe(ref target, n);
                }
                else
                {
                    Vector256.Narrow(Vector256.Narrow(c0, c1), Vector256<short>.Zero).GetLower().AsByte().StoreUnsafe(ref target, n);
                }
            }
        }

        return groups * 8;
    }

    // Range of the division-free quotient: the remainder x − d·y is exact while exponent(d) + exponent(y) ≥ −103.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scaled(Vector256<float> x, Vector256<float> factor, bool multiply) => multiply ? x * factor : x / factor;

    /// <summary>
    /// max |x| over one block, lane-wise (8 lanes left), computed on the bits: non-negative floats order like their
    /// bit patterns, and NaN patterns lie above +∞'s, so one integer max both finds the absmax and keeps any NaN or ∞
    /// visible to a single test of the result (see <see cref="EightBlocksAtATime"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockMax(ref float source, nuint start, int vectorsPerBlock)
    {
        Vector256<int> magnitude = Vector256.Create(0x7FFF_FFFF);
        Vector256<int> m = Vector256.Max(Vector256.LoadUnsafe(ref source, start).AsInt32() & magnitude,
            Vector256.LoadUnsafe(ref source, start + 8).AsInt32() & magnitude);
        if (vectorsPerBlock == 4)
        {
            m = Vector256.Max(m, Vector256.Max(Vector256.LoadUnsafe(ref source, start + 16).AsInt32() & magnitude,
                Vector256.LoadUnsafe(ref source, start + 24).AsInt32() & magnitude));
        }

        return m.AsSingle();
    }

    /// <summary>Lane k of the result is the maximum of the eight lanes of m_k (max is exact in any order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ReduceEight(Vector256<float> m0, Vector256<float> m1, Vector256<float> m2, Vector256<float> m3,
        Vector256<float> m4, Vector256<float> m5, Vector256<float> m6, Vector256<float> m7)
    {
        // Pairs: per 128-bit half, [max(a0,a2), max(b0,b2), max(a1,a3), max(b1,b3)].
        Vector256<float> t01 = Avx.Max(Avx.UnpackLow(m0, m1), Avx.UnpackHigh(m0, m1));
        Vector256<float> t23 = Avx.Max(Avx.UnpackLow(m2, m3), Avx.UnpackHigh(m2, m3));
        Vector256<float> t45 = Avx.Max(Avx.UnpackLow(m4, m5), Avx.UnpackHigh(m4, m5));
        Vector256<float> t67 = Avx.Max(Avx.UnpackLow(m6, m7), Avx.UnpackHigh(m6, m7));
        // Quads: per 128-bit half, the maxima of that half of m0..m3 (and m4..m7).
        Vector256<float> u0123 = Avx.Max(Avx.Shuffle(t01, t23, 0b01_00_01_00), Avx.Shuffle(t01, t23, 0b11_10_11_10));
        Vector256<float> u4567 = Avx.Max(Avx.Shuffle(t45, t67, 0b01_00_01_00), Avx.Shuffle(t45, t67, 0b11_10_11_10));
        // Halves: lower with upper.
        return Avx.Max(Avx.Permute2x128(u0123, u4567, 0x20), Avx.Permute2x128(u0123, u4567, 0x31));
    }
}
