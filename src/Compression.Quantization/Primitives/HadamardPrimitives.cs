// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Compression.Quantization.Primitives;

/// <summary>
/// Butterfly loops of the fast Walsh–Hadamard transform. The callers validated every length; nothing here checks.
/// </summary>
/// <remarks>
/// Every path computes each output with the same expression tree as <see cref="ScalarBlocks(Span{float}, int, float)"/>:
/// stages in increasing stride h = 1, 2, 4, …, n/2, each replacing (a, b) at (j, j + h) by (a + b, a − b), then one
/// multiplication by the scale. Vector lanes only change how many butterflies run at once, and IEEE addition is
/// commutative and a − b is a + (−b) bit for bit, so the SIMD paths, the scalar path and the ILGPU kernel
/// (<c>HadamardKernels</c>) agree exactly. The scale multiplies the last stage's sums, after they are rounded, which
/// is the same as a separate pass and leaves no product-then-sum that a compiler could fuse.
/// </remarks>
internal static class HadamardPrimitives
{
    /// <summary>The reference: every block of <paramref name="blockSize"/> (a power of two) of <paramref name="values"/>.</summary>
    public static void ScalarBlocks(Span<float> values, int blockSize, float scale)
    {
        for (int start = 0; start < values.Length; start += blockSize)
        {
            Span<float> x = values.Slice(start, blockSize);
            for (int h = 1; h < blockSize; h *= 2)
            {
                for (int i = 0; i < blockSize; i += 2 * h)
                {
                    for (int j = i; j < i + h; j++)
                    {
                        float a = x[j], b = x[j + h];
                        x[j] = a + b;
                        x[j + h] = a - b;
                    }
                }
            }

            for (int j = 0; j < blockSize; j++)
            {
                x[j] *= scale;
            }
        }
    }

    /// <summary>The float64 reference, in the same order.</summary>
    public static void ScalarBlocks(Span<double> values, int blockSize, double scale)
    {
        for (int start = 0; start < values.Length; start += blockSize)
        {
            Span<double> x = values.Slice(start, blockSize);
            for (int h = 1; h < blockSize; h *= 2)
            {
                for (int i = 0; i < blockSize; i += 2 * h)
                {
                    for (int j = i; j < i + h; j++)
                    {
                        double a = x[j], b = x[j + h];
                        x[j] = a + b;
                        x[j + h] = a - b;
                    }
                }
            }

            for (int j = 0; j < blockSize; j++)
            {
                x[j] *= scale;
            }
        }
    }

    /// <summary>Transforms every block of <paramref name="blockSize"/> of <paramref name="values"/> in place, with SIMD
    /// where the hardware has it; bit-identical to <see cref="ScalarBlocks(Span{float}, int, float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Blocks(Span<float> values, int blockSize, float scale)
    {
        // The vector stages below address memory without bounds checks: a partial last block would write past the span.
        if (blockSize <= 0 || (blockSize & (blockSize - 1)) != 0 || values.Length % blockSize != 0)
        {
            throw new ArgumentException($"{values.Length} values are not a whole number of blocks of {blockSize} (a power of two).", nameof(values));
        }

        if (!Vector256.IsHardwareAccelerated || blockSize < 8)
        {
            // Blocks of 2 and 4 are rare (tests, toy models) and machines without 256-bit vectors are not the target.
            ScalarBlocks(values, blockSize, scale);
            return;
        }

        ref float origin = ref MemoryMarshal.GetReference(values);
        int length = values.Length;

        // Strides 1, 2 and 4 stay inside eight consecutive floats: one pass of shuffles over the whole span.
        SmallStrides(ref origin, length, blockSize == 8 ? scale : 1f, blockSize == 8);
        if (blockSize == 8)
        {
            return;
        }

        for (int start = 0; start < length; start += blockSize)
        {
            ref float block = ref Unsafe.Add(ref origin, start);
            for (int h = 8; h < blockSize; h *= 2)
            {
                bool last = 2 * h == blockSize;
                if (Vector512.IsHardwareAccelerated && h >= 16)
                {
                    Stage512(ref block, blockSize, h, last, scale);
                }
                else
                {
                    Stage256(ref block, blockSize, h, last, scale);
                }
            }
        }
    }

    /// <summary>Stages h = 1, 2, 4 on each group of eight floats, as shuffles: lane k pairs with lane k ^ h; the lower
    /// lane takes partner + self (= a + b), the upper lane partner + (−self) (= a − b).</summary>
    private static void SmallStrides(ref float origin, int length, float scale, bool applyScale)
    {
        Vector256<float> sign1 = Vector256.Create(0f, -0f, 0f, -0f, 0f, -0f, 0f, -0f);
        Vector256<float> sign2 = Vector256.Create(0f, 0f, -0f, -0f, 0f, 0f, -0f, -0f);
        Vector256<float> sign4 = Vector256.Create(0f, 0f, 0f, 0f, -0f, -0f, -0f, -0f);
        Vector256<float> factor = Vector256.Create(scale);
        for (int i = 0; i <= length - 8; i += 8)
        {
            Vector256<float> v = Vector256.LoadUnsafe(ref origin, (nuint)i);
            v = Vector256.Shuffle(v, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6)) + (v ^ sign1);
            v = Vector256.Shuffle(v, Vector256.Create(2, 3, 0, 1, 6, 7, 4, 5)) + (v ^ sign2);
            v = Vector256.Shuffle(v, Vector256.Create(4, 5, 6, 7, 0, 1, 2, 3)) + (v ^ sign4);
            if (applyScale)
            {
                v *= factor;
            }

            v.StoreUnsafe(ref origin, (nuint)i);
        }
    }

    private static void Stage256(ref float block, int blockSize, int h, bool last, float scale)
    {
        Vector256<float> factor = Vector256.Create(scale);
        for (int i = 0; i < blockSize; i += 2 * h)
        {
            for (int j = i; j < i + h; j += 8)
            {
                Vector256<float> a = Vector256.LoadUnsafe(ref block, (nuint)j);
                Vector256<float> b = Vector256.LoadUnsafe(ref block, (nuint)(j + h));
                Vector256<float> sum = a + b, difference = a - b;
                if (last)
                {
                    sum *= factor;
                    difference *= factor;
                }

                sum.StoreUnsafe(ref block, (nuint)j);
                difference.StoreUnsafe(ref block, (nuint)(j + h));
            }
        }
    }

    private static void Stage512(ref float block, int blockSize, int h, bool last, float scale)
    {
        Vector512<float> factor = Vector512.Create(scale);
        for (int i = 0; i < blockSize; i += 2 * h)
        {
            for (int j = i; j < i + h; j += 16)
            {
                Vector512<float> a = Vector512.LoadUnsafe(ref block, (nuint)j);
                Vector512<float> b = Vector512.LoadUnsafe(ref block, (nuint)(j + h));
                Vector512<float> sum = a + b, difference = a - b;
                if (last)
                {
                    sum *= factor;
                    difference *= factor;
                }

                sum.StoreUnsafe(ref block, (nuint)j);
                difference.StoreUnsafe(ref block, (nuint)(j + h));
            }
        }
    }

    /// <summary>Float64 blocks: vector butterflies for strides of four and more, scalar below; bit-identical to
    /// <see cref="ScalarBlocks(Span{double}, int, double)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Blocks(Span<double> values, int blockSize, double scale)
    {
        if (!Vector256.IsHardwareAccelerated || blockSize < 8)
        {
            ScalarBlocks(values, blockSize, scale);
            return;
        }

        for (int start = 0; start < values.Length; start += blockSize)
        {
            Span<double> x = values.Slice(start, blockSize);
            for (int i = 0; i < blockSize; i += 4)
            {
                // Strides 1 and 2 inside four doubles, scalar: the float64 path serves Hessians, not the hot loop.
                double x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
                double s0 = x0 + x1, d0 = x0 - x1, s1 = x2 + x3, d1 = x2 - x3;
                x[i] = s0 + s1;
                x[i + 1] = d0 + d1;
                x[i + 2] = s0 - s1;
                x[i + 3] = d0 - d1;
            }

            ref double block = ref MemoryMarshal.GetReference(x);
            Vector256<double> factor = Vector256.Create(scale);
            for (int h = 4; h < blockSize; h *= 2)
            {
                bool last = 2 * h == blockSize;
                for (int i = 0; i < blockSize; i += 2 * h)
                {
                    for (int j = i; j < i + h; j += 4)
                    {
                        Vector256<double> a = Vector256.LoadUnsafe(ref block, (nuint)j);
                        Vector256<double> b = Vector256.LoadUnsafe(ref block, (nuint)(j + h));
                        Vector256<double> sum = a + b, difference = a - b;
                        if (last)
                        {
                            sum *= factor;
                            difference *= factor;
                        }

                        sum.StoreUnsafe(ref block, (nuint)j);
                        difference.StoreUnsafe(ref block, (nuint)(j + h));
                    }
                }
            }
        }
    }

    /// <summary>
    /// The transform along the row index of a row-major float64 matrix: rows [<paramref name="firstRow"/>,
    /// <paramref name="firstRow"/> + <paramref name="blockSize"/>) are one block, and each butterfly combines two whole
    /// row segments [<paramref name="firstColumn"/>, + <paramref name="count"/>) element by element. This is R·G for a
    /// block of rows without a transpose; each element sees the same operations as in <see cref="ScalarBlocks(Span{double}, int, double)"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void AcrossRows(Span<double> matrix, int columns, int firstRow, int blockSize, int firstColumn, int count, double scale)
    {
        for (int h = 1; h < blockSize; h *= 2)
        {
            bool last = 2 * h == blockSize;
            for (int i = 0; i < blockSize; i += 2 * h)
            {
                for (int j = i; j < i + h; j++)
                {
                    Span<double> a = matrix.Slice((firstRow + j) * columns + firstColumn, count);
                    Span<double> b = matrix.Slice((firstRow + j + h) * columns + firstColumn, count);
                    PairRows(a, b, last ? scale : 1.0);
                }
            }
        }
    }

    private static void PairRows(Span<double> a, Span<double> b, double scale)
    {
        ref double ra = ref MemoryMarshal.GetReference(a);
        ref double rb = ref MemoryMarshal.GetReference(b);
        int k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> factor = Vector256.Create(scale);
            for (; k <= a.Length - 4; k += 4)
            {
                Vector256<double> x = Vector256.LoadUnsafe(ref ra, (nuint)k), y = Vector256.LoadUnsafe(ref rb, (nuint)k);
                // Multiplying by 1.0 on the inner stages is exact, so one loop serves every stage.
                ((x + y) * factor).StoreUnsafe(ref ra, (nuint)k);
                ((x - y) * factor).StoreUnsafe(ref rb, (nuint)k);
            }
        }

        for (; k < a.Length; k++)
        {
            double x = a[k], y = b[k];
            a[k] = (x + y) * scale;
            b[k] = (x - y) * scale;
        }
    }
}
