// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning;

/// <summary>
/// The k-th smallest of a set of non-negative scores and how to prune exactly k of them: every score below the
/// threshold, then the first <see cref="TakeAtKey"/> (in index order) of those equal to it.
/// </summary>
/// <param name="Key">The threshold as an ordered key (see <see cref="ThresholdSelection.KeyOf"/>).</param>
/// <param name="TakeAtKey">How many elements whose key equals the threshold are pruned, lowest index first.</param>
internal readonly record struct SelectionThreshold(uint Key, long TakeAtKey);

/// <summary>
/// Exact selection of the k smallest scores in O(n): a three-pass radix select on the scores' bit patterns, no copy of
/// the data; small inputs are sorted instead, where the 2048-bucket histograms would cost more than the sort.
/// </summary>
/// <remarks>
/// A non-negative IEEE float orders like its bit pattern read as an unsigned integer, so clearing the sign bit turns
/// |x| into an integer key with the same order (−0 and +0 become equal, as magnitudes should). The radix passes read
/// 11, 11 and 10 bits of that key, counting only the elements whose higher bits match the digits chosen so far; the
/// result is exact, unlike a sampled or bucketed threshold, which is what makes "exactly round(s·n) pruned" hold.
/// </remarks>
internal static class ThresholdSelection
{
    /// <summary>Below this many elements, sorting a copy of the keys is cheaper than three histogram passes.</summary>
    private const int SortLimit = 512;

    private static ReadOnlySpan<int> Shifts => [21, 10, 0];

    private static ReadOnlySpan<int> Widths => [11, 11, 10];

    /// <summary>The ordered key of |<paramref name="value"/>|.</summary>
    public static uint KeyOf(float value) => BitConverter.SingleToUInt32Bits(value) & 0x7FFF_FFFFu;

    /// <summary>The threshold that prunes the <paramref name="k"/> smallest |values| (1 ≤ k ≤ length).</summary>
    public static SelectionThreshold Select(ReadOnlyMemory<float> values, long k) =>
        Select(new ReadOnlySpan<ReadOnlyMemory<float>>(in values), k);

    /// <summary>
    /// The threshold that prunes the <paramref name="k"/> smallest |values| of the segments taken together, in the order
    /// (segment, index) for ties (1 ≤ k ≤ total length).
    /// </summary>
    public static SelectionThreshold Select(ReadOnlySpan<ReadOnlyMemory<float>> segments, long k)
    {
        long total = 0;
        foreach (ReadOnlyMemory<float> segment in segments)
        {
            total += segment.Length;
        }

        if (k < 1 || k > total)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must lie in [1, {total}].");
        }

        return total <= SortLimit ? SelectBySorting(segments, (int)total, (int)k) : SelectByRadix(segments, k);
    }

    private static SelectionThreshold SelectBySorting(ReadOnlySpan<ReadOnlyMemory<float>> segments, int total, int k)
    {
        Span<uint> keys = stackalloc uint[total];
        int n = 0;
        foreach (ReadOnlyMemory<float> segment in segments)
        {
            foreach (float value in segment.Span)
            {
                keys[n++] = KeyOf(value);
            }
        }

        keys.Sort();
        uint key = keys[k - 1];
        int first = k - 1;
        while (first > 0 && keys[first - 1] == key)
        {
            first--;
        }

        return new SelectionThreshold(key, k - first);
    }

    private static SelectionThreshold SelectByRadix(ReadOnlySpan<ReadOnlyMemory<float>> segments, long k)
    {
        Span<long> histogram = stackalloc long[2048];
        uint prefix = 0;
        long rank = k;   // the target's 1-based rank among the elements matching the prefix so far
        for (int pass = 0; pass < 3; pass++)
        {
            int shift = Shifts[pass], width = Widths[pass];
            uint digitMask = (1u << width) - 1;
            int high = shift + width;
            histogram.Clear();
            foreach (ReadOnlyMemory<float> segment in segments)
            {
                Count(segment.Span, histogram, pass == 0, prefix, high, shift, digitMask);
            }

            uint digit = 0;
            long below = 0;
            while (below + histogram[(int)digit] < rank)
            {
                below += histogram[(int)digit];
                digit++;
            }

            rank -= below;
            prefix = (prefix << width) | digit;
        }

        return new SelectionThreshold(prefix, rank);
    }

    private static void Count(ReadOnlySpan<float> values, Span<long> histogram, bool all, uint prefix, int high, int shift, uint digitMask)
    {
        if (all)
        {
            foreach (float value in values)
            {
                histogram[(int)(KeyOf(value) >> shift)]++;
            }

            return;
        }

        foreach (float value in values)
        {
            uint key = KeyOf(value);
            if (key >> high == prefix)
            {
                histogram[(int)((key >> shift) & digitMask)]++;
            }
        }
    }
}
