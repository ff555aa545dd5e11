// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Compression.Quantization;

/// <summary>The per-row inner loop of GPTQ: quantize a block of columns one at a time, feeding each error forward.</summary>
internal static class GptqKernels
{
    /// <summary>
    /// Quantizes columns [<paramref name="first"/>, <paramref name="end"/>) of one row (processing order) in place of
    /// the paper's inner loop: q = Q(w_j), e = (w_j − q) / U_jj, w_(j+1..end) −= e·U_(j, j+1..end); w_j becomes q.
    /// A pruned weight (<paramref name="keep"/> false) gets the code of 0 instead, so q = 0 and its whole current value
    /// is the error fed forward.
    /// </summary>
    /// <param name="format">The element format.</param>
    /// <param name="options">The format's options.</param>
    /// <param name="row">The whole row, processing order, with every earlier block's update applied.</param>
    /// <param name="upper">U, the upper Cholesky factor of (H + λI)⁻¹ in processing order, columns × columns.</param>
    /// <param name="first">First column of the block.</param>
    /// <param name="end">One past the last column of the block.</param>
    /// <param name="groupSize">Columns per group (the row length per-channel).</param>
    /// <param name="groupOfColumn">Static groups: processing column → group; empty for dynamic groups, where a group is
    /// a run of <paramref name="groupSize"/> processing columns whose parameters are chosen at its first column.</param>
    /// <param name="parameters">The row's group parameters (filled here for dynamic groups).</param>
    /// <param name="tensorScale">NVFP4's tensor scale; 1 otherwise.</param>
    /// <param name="codes">The row's codes, processing order.</param>
    /// <param name="errors">The block's scaled errors e, one per column of the block.</param>
    /// <param name="keep">The row's sparsity mask, processing order (false: pruned); empty without a mask.</param>
    /// <param name="scratch">At least <paramref name="groupSize"/> floats when <paramref name="keep"/> is not empty: a
    /// dynamic group's values with the pruned ones at 0, from which its parameters are chosen.</param>
    /// <returns>False when a pruned weight's code does not decode to exactly 0 (the format cannot keep the mask);
    /// the row is then left partly quantized.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool QuantizeRowBlock(GroupedFormat format, RtnOptions options, Span<float> row, ReadOnlySpan<float> upper, int first, int end,
        int groupSize, ReadOnlySpan<int> groupOfColumn, Span<SegmentParameters> parameters, float tensorScale, Span<byte> codes, Span<float> errors,
        ReadOnlySpan<bool> keep = default, Span<float> scratch = default)
    {
        int columns = row.Length;
        bool masked = !keep.IsEmpty;
        Span<byte> code = stackalloc byte[1];
        Span<float> decoded = stackalloc float[1];
        for (int j = first; j < end; j++)
        {
            int group;
            if (groupOfColumn.IsEmpty)
            {
                group = j / groupSize;
                if (j % groupSize == 0)
                {
                    // The group's current values: blocks are whole groups, so every earlier error of the row is applied.
                    // Pruned weights count as the 0 they will decode to, not as the error-updated value they hold now.
                    int length = Math.Min(groupSize, columns - j);
                    ReadOnlySpan<float> values = row.Slice(j, length);
                    if (masked)
                    {
                        Span<float> zeroed = scratch[..length];
                        for (int t = 0; t < length; t++)
                        {
                            zeroed[t] = keep[j + t] ? values[t] : 0f;
                        }

                        values = zeroed;
                    }

                    parameters[group] = format.ChooseSegment(values, tensorScale, options);
                }
            }
            else
            {
                group = groupOfColumn[j];
            }

            ref readonly SegmentParameters p = ref parameters[group];
            float w = row[j];
            bool pruned = masked && !keep[j];
            float x = pruned ? 0f : w;
            format.EncodeSegmentWith(new ReadOnlySpan<float>(in x), p, options, code);
            format.DecodeSegment(code, p, options, decoded);
            if (pruned && decoded[0] != 0)
            {
                return false;
            }

            codes[j] = code[0];
            row[j] = decoded[0];
            float error = (w - decoded[0]) / upper[j * columns + j];
            errors[j - first] = error;
            int rest = end - j - 1;
            if (rest > 0 && error != 0)
            {
                Span<float> tail = row.Slice(j + 1, rest);
                TensorPrimitives.MultiplyAdd(upper.Slice(j * columns + j + 1, rest), -error, tail, tail);
            }
        }

        return true;
    }
}
