// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Compression.Quantization.Formats;

namespace Compression.Quantization.Primitives;

/// <summary>How a block format turns a block's absmax into its scale, and the scale into the element divisor.</summary>
internal interface IBlockScaleRule
{
    float Scale(float absMax, float tensorScale);

    float Divisor(float scale, float tensorScale);

    /// <summary>Whether divisors are powers of two (then multiplying by the reciprocal is exact and equal to dividing).</summary>
    bool DivisorIsPowerOfTwo { get; }
}

/// <summary>
/// One pass over a row of a block-scaled small-float format (MX with FP elements, NVFP4): per block of 16 or 32,
/// absmax, scale and codes in registers, without a call per block. Bit-identical to the per-segment path (same
/// absmax, same scale rule, same encoder), which the scalar-reference tests hold it to.
/// </summary>
internal static class BlockPrimitives
{
    /// <summary>Quantizes a row; returns false, leaving the rest undone, at the first block holding NaN or ±∞.</summary>
    public static bool QuantizeRow<TRule>(ReadOnlySpan<float> row, int blockSize, MiniFloatCodec codec, TRule rule, float tensorScale,
        Span<float> scales, Span<byte> codes)
        where TRule : struct, IBlockScaleRule
    {
        int blocks = (row.Length + blockSize - 1) / blockSize;
        int vectorsPerBlock = blockSize / 8;
        bool vectorized = Vector256.IsHardwareAccelerated && (blockSize == 16 || blockSize == 32);
        var encoder = new MiniFloatPrimitives.VectorEncoder(codec);
        ref float source = ref MemoryMarshal.GetReference(row);
        ref byte target = ref MemoryMarshal.GetReference(codes);
        for (int b = 0; b < blocks; b++)
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
                MiniFloatPrimitives.Quantize(codec, x, rule.Divisor(scale, tensorScale), saturate: true, codes.Slice(start, length));
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
                c0 = encoder.Encode(v0 * reciprocal);
                c1 = encoder.Encode(v1 * reciprocal);
                c2 = vectorsPerBlock == 4 ? encoder.Encode(v2 * reciprocal) : Vector256<int>.Zero;
                c3 = vectorsPerBlock == 4 ? encoder.Encode(v3 * reciprocal) : Vector256<int>.Zero;
            }
            else
            {
                Vector256<float> d = Vector256.Create(divisor);
                c0 = encoder.Encode(v0 / d);
                c1 = encoder.Encode(v1 / d);
                c2 = vectorsPerBlock == 4 ? encoder.Encode(v2 / d) : Vector256<int>.Zero;
                c3 = vectorsPerBlock == 4 ? encoder.Encode(v3 / d) : Vector256<int>.Zero;
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
}
