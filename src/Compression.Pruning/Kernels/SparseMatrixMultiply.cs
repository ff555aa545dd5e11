// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Threading.Tasks;
using Compression.Pruning.Storage;
using Compression.Tensors;

namespace Compression.Pruning.Kernels;

/// <summary>
/// Sparse × dense products for linear layers with a sparse weight: <c>Y = X·Aᵀ</c> with A [out, in] stored as CSR,
/// BSR or N:M, X [batch, in] dense and Y [batch, out] dense (PyTorch's <c>y = x Wᵀ</c>). Y is overwritten.
/// </summary>
/// <remarks>
/// <para>Batch 1 is a gather dot product per output row (CSR, N:M) or a vector dot product per block row (BSR).
/// From batch 2 on, X is first transposed into Xᵀ [in, batch], so that each stored weight a_rc multiplies one
/// contiguous row Xᵀ[c, :] into the output row's accumulators: 256-bit fused multiply-adds over the batch, 64, 32
/// or 8 columns at a time in registers. BSR additionally reuses every loaded Xᵀ vector for two rows of its dense
/// blocks. Output rows are spread over the cores (<c>Parallel.For</c>, tiles of 16 rows or one block row) once the
/// work passes about 64 K multiply-adds.</para>
/// <para>Sums are float32, in the order of the stored elements (fused where the hardware has FMA), so results agree
/// with a float64 reference within about n·ε·Σ|a||x| for n stored elements per row (ε = 2⁻²⁴). Only stored elements
/// are multiplied: a NaN or infinity in X at a column the row does not store does not reach that output, unlike in
/// a dense product.</para>
/// </remarks>
/// <example>
/// <code>
/// CsrTensor w = CsrTensor.FromPruned(pruned);                  // [out, in]
/// var y = new DenseTensor(x.Rows, w.Rows);
/// SparseMatrixMultiply.Multiply(w, x, y);                      // y = x·wᵀ
/// </code>
/// </example>
public static class SparseMatrixMultiply
{
    private const int RowTile = 16;
    private const long ParallelWork = 1 << 16;
    private const int Lanes = 8;            // float32 lanes of a Vector256

    /// <summary>Y = X·Aᵀ for a CSR weight A [out, in], X [batch, in] and Y [batch, out].</summary>
    /// <exception cref="ArgumentException">The shapes do not match, or Y overlaps X.</exception>
    public static void Multiply(CsrTensor a, DenseTensor x, DenseTensor y)
    {
        ArgumentNullException.ThrowIfNull(a);
        int batch = Check(a, x, y);
        if (batch == 0 || a.Rows == 0)
        {
            return;
        }

        if (a.ColumnIndexArray.Narrow is ushort[] narrow)
        {
            MultiplyCsr(a, narrow, x, y, batch);
        }
        else
        {
            MultiplyCsr(a, a.ColumnIndexArray.Wide!, x, y, batch);
        }
    }

    /// <summary>Y = X·Aᵀ for a BSR weight A [out, in], X [batch, in] and Y [batch, out].</summary>
    /// <exception cref="ArgumentException">The shapes do not match, or Y overlaps X.</exception>
    public static void Multiply(BsrTensor a, DenseTensor x, DenseTensor y)
    {
        ArgumentNullException.ThrowIfNull(a);
        int batch = Check(a, x, y);
        if (batch == 0 || a.Rows == 0)
        {
            return;
        }

        if (a.BlockColumnIndexArray.Narrow is ushort[] narrow)
        {
            MultiplyBsr(a, narrow, x, y, batch);
        }
        else
        {
            MultiplyBsr(a, a.BlockColumnIndexArray.Wide!, x, y, batch);
        }
    }

    /// <summary>Y = X·Aᵀ for an N:M weight A [out, in], X [batch, in] and Y [batch, out].</summary>
    /// <exception cref="ArgumentException">The shapes do not match, or Y overlaps X.</exception>
    public static void Multiply(SemiStructuredTensor a, DenseTensor x, DenseTensor y)
    {
        ArgumentNullException.ThrowIfNull(a);
        int batch = Check(a, x, y);
        if (batch == 0 || a.Rows == 0)
        {
            return;
        }

        int rows = a.Rows, columns = a.Columns, perRow = a.ValuesPerRow;
        float[] values = a.ValueArray;
        float[]? xt = batch > 1 ? Transpose(x, batch, columns) : null;
        ReadOnlyMemory<float> input = x.Memory;
        Memory<float> output = y.Memory;
        ForTiles(rows, RowTile, (long)rows * perRow * batch, (start, count) =>
        {
            int[] scratchColumns = ArrayPool<int>.Shared.Rent(Math.Max(perRow, 1));
            float[] scratch = ArrayPool<float>.Shared.Rent(Math.Max(count * batch, 1));
            Span<int> columnsOfRow = scratchColumns.AsSpan(0, perRow);
            for (int t = 0; t < count; t++)
            {
                int r = start + t;
                DecodeColumns(a, r, columnsOfRow);
                ReadOnlySpan<float> rowValues = values.AsSpan(r * perRow, perRow);
                if (xt is null)
                {
                    scratch[t] = GatherDot<int>(columnsOfRow, rowValues, input.Span);
                }
                else
                {
                    AccumulateRow<int>(columnsOfRow, rowValues, xt, batch, scratch.AsSpan(t * batch, batch));
                }
            }

            Store(scratch, output.Span, start, count, batch, rows);
            ArrayPool<float>.Shared.Return(scratch);
            ArrayPool<int>.Shared.Return(scratchColumns);
        });

        Return(xt);
    }

    private static void MultiplyCsr<TIndex>(CsrTensor a, TIndex[] indices, DenseTensor x, DenseTensor y, int batch)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int rows = a.Rows;
        int[] pointers = a.RowPointerArray;
        float[] values = a.ValueArray;
        float[]? xt = batch > 1 ? Transpose(x, batch, a.Columns) : null;
        ReadOnlyMemory<float> input = x.Memory;
        Memory<float> output = y.Memory;
        ForTiles(rows, RowTile, (long)a.StoredCount * batch, (start, count) =>
        {
            float[] scratch = ArrayPool<float>.Shared.Rent(Math.Max(count * batch, 1));
            for (int t = 0; t < count; t++)
            {
                int r = start + t, begin = pointers[r], length = pointers[r + 1] - begin;
                ReadOnlySpan<TIndex> rowColumns = indices.AsSpan(begin, length);
                ReadOnlySpan<float> rowValues = values.AsSpan(begin, length);
                if (xt is null)
                {
                    scratch[t] = GatherDot(rowColumns, rowValues, input.Span);
                }
                else
                {
                    AccumulateRow(rowColumns, rowValues, xt, batch, scratch.AsSpan(t * batch, batch));
                }
            }

            Store(scratch, output.Span, start, count, batch, rows);
            ArrayPool<float>.Shared.Return(scratch);
        });

        Return(xt);
    }

    private static void MultiplyBsr<TIndex>(BsrTensor a, TIndex[] indices, DenseTensor x, DenseTensor y, int batch)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int rows = a.Rows, blockRows = a.BlockRows, blockColumns = a.BlockColumns;
        int[] pointers = a.BlockRowPointerArray;
        float[] values = a.ValueArray;
        float[]? xt = batch > 1 ? Transpose(x, batch, a.Columns) : null;
        ReadOnlyMemory<float> input = x.Memory;
        Memory<float> output = y.Memory;
        long work = (long)a.BlockCount * blockRows * blockColumns * batch;
        // One tile per block row (a whole number of blocks); several small block rows per tile when blocks are short.
        int tileRows = blockRows * Math.Max(1, RowTile / blockRows);
        ForTiles(rows, tileRows, work, (start, count) =>
        {
            float[] scratch = ArrayPool<float>.Shared.Rent(Math.Max(count * batch, 1));
            for (int br = start / blockRows; br < (start + count) / blockRows; br++)
            {
                int begin = pointers[br], blocks = pointers[br + 1] - begin;
                ReadOnlySpan<TIndex> blockColumnIndices = indices.AsSpan(begin, blocks);
                int offset = (br * blockRows - start) * batch;
                if (xt is null)
                {
                    BlockRowDot(blockColumnIndices, values, begin, blockRows, blockColumns, input.Span, scratch.AsSpan(offset, blockRows));
                }
                else
                {
                    BlockRowAccumulate(blockColumnIndices, values, begin, blockRows, blockColumns, xt, batch, scratch.AsSpan(offset, blockRows * batch));
                }
            }

            Store(scratch, output.Span, start, count, batch, rows);
            ArrayPool<float>.Shared.Return(scratch);
        });

        Return(xt);
    }

    /// <summary>Σ values[k]·x[columns[k]] with four independent accumulators (the gathers are the bottleneck).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float GatherDot<TIndex>(ReadOnlySpan<TIndex> columns, ReadOnlySpan<float> values, ReadOnlySpan<float> x)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref float x0 = ref MemoryMarshal.GetReference(x);
        ref TIndex c0 = ref MemoryMarshal.GetReference(columns);
        ref float v0 = ref MemoryMarshal.GetReference(values);
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int k = 0, n = values.Length;
        for (; k + 4 <= n; k += 4)
        {
            // Indices were validated when the layout was built or read: every one lies inside x.
            s0 = float.MultiplyAddEstimate(Unsafe.Add(ref v0, k), Unsafe.Add(ref x0, int.CreateTruncating(Unsafe.Add(ref c0, k))), s0);
            s1 = float.MultiplyAddEstimate(Unsafe.Add(ref v0, k + 1), Unsafe.Add(ref x0, int.CreateTruncating(Unsafe.Add(ref c0, k + 1))), s1);
            s2 = float.MultiplyAddEstimate(Unsafe.Add(ref v0, k + 2), Unsafe.Add(ref x0, int.CreateTruncating(Unsafe.Add(ref c0, k + 2))), s2);
            s3 = float.MultiplyAddEstimate(Unsafe.Add(ref v0, k + 3), Unsafe.Add(ref x0, int.CreateTruncating(Unsafe.Add(ref c0, k + 3))), s3);
        }

        for (; k < n; k++)
        {
            s0 = float.MultiplyAddEstimate(Unsafe.Add(ref v0, k), Unsafe.Add(ref x0, int.CreateTruncating(Unsafe.Add(ref c0, k))), s0);
        }

        return (s0 + s1) + (s2 + s3);
    }

    /// <summary>acc[0..batch) = Σ_k values[k]·Xᵀ[columns[k], 0..batch), 64, 32, then 8 batch columns per pass in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateRow<TIndex>(ReadOnlySpan<TIndex> columns, ReadOnlySpan<float> values, float[] xt, int batch, Span<float> acc)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref float x0 = ref MemoryMarshal.GetArrayDataReference(xt);
        ref TIndex c0 = ref MemoryMarshal.GetReference(columns);
        ref float v0 = ref MemoryMarshal.GetReference(values);
        ref float out0 = ref MemoryMarshal.GetReference(acc);
        int n = values.Length, b0 = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; b0 + 8 * Lanes <= batch; b0 += 8 * Lanes)
            {
                // 64 batch columns: the index and value loads of each element feed eight fused multiply-adds.
                Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
                for (int k = 0; k < n; k++)
                {
                    var w = Vector256.Create(Unsafe.Add(ref v0, k));
                    ref float row = ref Unsafe.Add(ref x0, (nint)int.CreateTruncating(Unsafe.Add(ref c0, k)) * batch + b0);
                    a0 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row), a0);
                    a1 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, Lanes), a1);
                    a2 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, 2 * Lanes), a2);
                    a3 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, 3 * Lanes), a3);
                    a4 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, 4 * Lanes), a4);
                    a5 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, 5 * Lanes), a5);
                    a6 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, 6 * Lanes), a6);
                    a7 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, 7 * Lanes), a7);
                }

                ref float target = ref Unsafe.Add(ref out0, b0);
                a0.StoreUnsafe(ref target);
                a1.StoreUnsafe(ref target, Lanes);
                a2.StoreUnsafe(ref target, 2 * Lanes);
                a3.StoreUnsafe(ref target, 3 * Lanes);
                a4.StoreUnsafe(ref target, 4 * Lanes);
                a5.StoreUnsafe(ref target, 5 * Lanes);
                a6.StoreUnsafe(ref target, 6 * Lanes);
                a7.StoreUnsafe(ref target, 7 * Lanes);
            }

            for (; b0 + 4 * Lanes <= batch; b0 += 4 * Lanes)
            {
                Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                for (int k = 0; k < n; k++)
                {
                    var w = Vector256.Create(Unsafe.Add(ref v0, k));
                    ref float row = ref Unsafe.Add(ref x0, (nint)int.CreateTruncating(Unsafe.Add(ref c0, k)) * batch + b0);
                    a0 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row), a0);
                    a1 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, Lanes), a1);
                    a2 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, 2 * Lanes), a2);
                    a3 = Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref row, 3 * Lanes), a3);
                }

                a0.StoreUnsafe(ref out0, (nuint)b0);
                a1.StoreUnsafe(ref out0, (nuint)(b0 + Lanes));
                a2.StoreUnsafe(ref out0, (nuint)(b0 + 2 * Lanes));
                a3.StoreUnsafe(ref out0, (nuint)(b0 + 3 * Lanes));
            }

            for (; b0 + Lanes <= batch; b0 += Lanes)
            {
                Vector256<float> a0 = Vector256<float>.Zero;
                for (int k = 0; k < n; k++)
                {
                    ref float row = ref Unsafe.Add(ref x0, (nint)int.CreateTruncating(Unsafe.Add(ref c0, k)) * batch + b0);
                    a0 = Vector256.MultiplyAddEstimate(Vector256.Create(Unsafe.Add(ref v0, k)), Vector256.LoadUnsafe(ref row), a0);
                }

                a0.StoreUnsafe(ref out0, (nuint)b0);
            }
        }

        for (; b0 < batch; b0++)
        {
            float s = 0;
            for (int k = 0; k < n; k++)
            {
                s = float.MultiplyAddEstimate(Unsafe.Add(ref v0, k), Unsafe.Add(ref x0, (nint)int.CreateTruncating(Unsafe.Add(ref c0, k)) * batch + b0), s);
            }

            Unsafe.Add(ref out0, b0) = s;
        }
    }

    /// <summary>
    /// Batch 1, one block row: y[i] = Σ_blocks B[i, :]·x[segment]. Four rows of the blocks at a time, each with two
    /// vector accumulators (even and odd 8-column steps), so that eight independent chains of fused multiply-adds hide
    /// their latency and every loaded x vector feeds four of them; the sums are reduced once per row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BlockRowDot<TIndex>(ReadOnlySpan<TIndex> blockColumnIndices, float[] values, int firstBlock, int blockRows, int blockColumns,
        ReadOnlySpan<float> x, Span<float> y)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref float x0 = ref MemoryMarshal.GetReference(x);
        ref float w0 = ref MemoryMarshal.GetArrayDataReference(values);
        int blockSize = blockRows * blockColumns, blocks = blockColumnIndices.Length;
        int pairs = Vector256.IsHardwareAccelerated ? blockColumns / (2 * Lanes) * 2 * Lanes : 0;
        int vectors = Vector256.IsHardwareAccelerated ? blockColumns / Lanes * Lanes : 0;
        int i = 0;
        if (vectors > 0)
        {
            for (; i + 4 <= blockRows; i += 4)
            {
                Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
                float sa = 0, sb = 0, sc = 0, sd = 0;
                for (int b = 0; b < blocks; b++)
                {
                    ref float wa = ref Unsafe.Add(ref w0, (nint)(firstBlock + b) * blockSize + i * blockColumns);
                    ref float wb = ref Unsafe.Add(ref wa, blockColumns);
                    ref float wc = ref Unsafe.Add(ref wb, blockColumns);
                    ref float wd = ref Unsafe.Add(ref wc, blockColumns);
                    ref float xs = ref Unsafe.Add(ref x0, (nint)int.CreateTruncating(blockColumnIndices[b]) * blockColumns);
                    int j = 0;
                    for (; j < pairs; j += 2 * Lanes)
                    {
                        Vector256<float> u = Vector256.LoadUnsafe(ref xs, (nuint)j), v = Vector256.LoadUnsafe(ref xs, (nuint)(j + Lanes));
                        a0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wa, (nuint)j), u, a0);
                        a1 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wa, (nuint)(j + Lanes)), v, a1);
                        b0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wb, (nuint)j), u, b0);
                        b1 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wb, (nuint)(j + Lanes)), v, b1);
                        c0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wc, (nuint)j), u, c0);
                        c1 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wc, (nuint)(j + Lanes)), v, c1);
                        d0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wd, (nuint)j), u, d0);
                        d1 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wd, (nuint)(j + Lanes)), v, d1);
                    }

                    for (; j < vectors; j += Lanes)
                    {
                        Vector256<float> u = Vector256.LoadUnsafe(ref xs, (nuint)j);
                        a0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wa, (nuint)j), u, a0);
                        b0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wb, (nuint)j), u, b0);
                        c0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wc, (nuint)j), u, c0);
                        d0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref wd, (nuint)j), u, d0);
                    }

                    for (; j < blockColumns; j++)
                    {
                        float xj = Unsafe.Add(ref xs, j);
                        sa = float.MultiplyAddEstimate(Unsafe.Add(ref wa, j), xj, sa);
                        sb = float.MultiplyAddEstimate(Unsafe.Add(ref wb, j), xj, sb);
                        sc = float.MultiplyAddEstimate(Unsafe.Add(ref wc, j), xj, sc);
                        sd = float.MultiplyAddEstimate(Unsafe.Add(ref wd, j), xj, sd);
                    }
                }

                y[i] = Vector256.Sum(a0 + a1) + sa;
                y[i + 1] = Vector256.Sum(b0 + b1) + sb;
                y[i + 2] = Vector256.Sum(c0 + c1) + sc;
                y[i + 3] = Vector256.Sum(d0 + d1) + sd;
            }
        }

        for (; i < blockRows; i++)
        {
            float s = 0;
            for (int b = 0; b < blocks; b++)
            {
                ref float w = ref Unsafe.Add(ref w0, (nint)(firstBlock + b) * blockSize + i * blockColumns);
                ref float xs = ref Unsafe.Add(ref x0, (nint)int.CreateTruncating(blockColumnIndices[b]) * blockColumns);
                for (int j = 0; j < blockColumns; j++)
                {
                    s = float.MultiplyAddEstimate(Unsafe.Add(ref w, j), Unsafe.Add(ref xs, j), s);
                }
            }

            y[i] = s;
        }
    }

    /// <summary>
    /// Batch ≥ 2, one block row: acc[i, 0..batch) = Σ_blocks Σ_j B[i, j]·Xᵀ[column + j, 0..batch), two block rows i
    /// at a time so that every loaded Xᵀ vector feeds two fused multiply-adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BlockRowAccumulate<TIndex>(ReadOnlySpan<TIndex> blockColumnIndices, float[] values, int firstBlock, int blockRows, int blockColumns,
        float[] xt, int batch, Span<float> acc)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref float x0 = ref MemoryMarshal.GetArrayDataReference(xt);
        ref float w0 = ref MemoryMarshal.GetArrayDataReference(values);
        ref float out0 = ref MemoryMarshal.GetReference(acc);
        int blockSize = blockRows * blockColumns, blocks = blockColumnIndices.Length;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 2 <= blockRows; i += 2)
            {
                int b0 = 0;
                for (; b0 + 4 * Lanes <= batch; b0 += 4 * Lanes)
                {
                    Vector256<float> p0 = Vector256<float>.Zero, p1 = p0, p2 = p0, p3 = p0, q0 = p0, q1 = p0, q2 = p0, q3 = p0;
                    for (int b = 0; b < blocks; b++)
                    {
                        ref float w = ref Unsafe.Add(ref w0, (nint)(firstBlock + b) * blockSize + i * blockColumns);
                        ref float xs = ref Unsafe.Add(ref x0, (nint)int.CreateTruncating(blockColumnIndices[b]) * blockColumns * batch + b0);
                        for (int j = 0; j < blockColumns; j++)
                        {
                            ref float row = ref Unsafe.Add(ref xs, (nint)j * batch);
                            Vector256<float> x0v = Vector256.LoadUnsafe(ref row), x1v = Vector256.LoadUnsafe(ref row, Lanes);
                            Vector256<float> x2v = Vector256.LoadUnsafe(ref row, 2 * Lanes), x3v = Vector256.LoadUnsafe(ref row, 3 * Lanes);
                            var u = Vector256.Create(Unsafe.Add(ref w, j));
                            var v = Vector256.Create(Unsafe.Add(ref w, blockColumns + j));
                            p0 = Vector256.MultiplyAddEstimate(u, x0v, p0);
                            p1 = Vector256.MultiplyAddEstimate(u, x1v, p1);
                            p2 = Vector256.MultiplyAddEstimate(u, x2v, p2);
                            p3 = Vector256.MultiplyAddEstimate(u, x3v, p3);
                            q0 = Vector256.MultiplyAddEstimate(v, x0v, q0);
                            q1 = Vector256.MultiplyAddEstimate(v, x1v, q1);
                            q2 = Vector256.MultiplyAddEstimate(v, x2v, q2);
                            q3 = Vector256.MultiplyAddEstimate(v, x3v, q3);
                        }
                    }

                    ref float p = ref Unsafe.Add(ref out0, i * batch + b0);
                    ref float q = ref Unsafe.Add(ref p, batch);
                    p0.StoreUnsafe(ref p);
                    p1.StoreUnsafe(ref p, Lanes);
                    p2.StoreUnsafe(ref p, 2 * Lanes);
                    p3.StoreUnsafe(ref p, 3 * Lanes);
                    q0.StoreUnsafe(ref q);
                    q1.StoreUnsafe(ref q, Lanes);
                    q2.StoreUnsafe(ref q, 2 * Lanes);
                    q3.StoreUnsafe(ref q, 3 * Lanes);
                }

                for (; b0 + Lanes <= batch; b0 += Lanes)
                {
                    Vector256<float> p0 = Vector256<float>.Zero, q0 = p0;
                    for (int b = 0; b < blocks; b++)
                    {
                        ref float w = ref Unsafe.Add(ref w0, (nint)(firstBlock + b) * blockSize + i * blockColumns);
                        ref float xs = ref Unsafe.Add(ref x0, (nint)int.CreateTruncating(blockColumnIndices[b]) * blockColumns * batch + b0);
                        for (int j = 0; j < blockColumns; j++)
                        {
                            Vector256<float> xv = Vector256.LoadUnsafe(ref Unsafe.Add(ref xs, (nint)j * batch));
                            p0 = Vector256.MultiplyAddEstimate(Vector256.Create(Unsafe.Add(ref w, j)), xv, p0);
                            q0 = Vector256.MultiplyAddEstimate(Vector256.Create(Unsafe.Add(ref w, blockColumns + j)), xv, q0);
                        }
                    }

                    p0.StoreUnsafe(ref Unsafe.Add(ref out0, i * batch + b0));
                    q0.StoreUnsafe(ref Unsafe.Add(ref out0, (i + 1) * batch + b0));
                }

                for (; b0 < batch; b0++)
                {
                    Unsafe.Add(ref out0, i * batch + b0) = BlockRowColumn(blockColumnIndices, ref w0, firstBlock, blockSize, blockColumns, i, ref x0, batch, b0);
                    Unsafe.Add(ref out0, (i + 1) * batch + b0) = BlockRowColumn(blockColumnIndices, ref w0, firstBlock, blockSize, blockColumns, i + 1, ref x0, batch, b0);
                }
            }
        }

        for (; i < blockRows; i++)
        {
            for (int b0 = 0; b0 < batch; b0++)
            {
                Unsafe.Add(ref out0, i * batch + b0) = BlockRowColumn(blockColumnIndices, ref w0, firstBlock, blockSize, blockColumns, i, ref x0, batch, b0);
            }
        }
    }

    /// <summary>The scalar remainder of <see cref="BlockRowAccumulate"/>: one output of row i and batch column b0.</summary>
    private static float BlockRowColumn<TIndex>(ReadOnlySpan<TIndex> blockColumnIndices, ref float w0, int firstBlock, int blockSize, int blockColumns,
        int i, ref float x0, int batch, int b0)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        float s = 0;
        for (int b = 0; b < blockColumnIndices.Length; b++)
        {
            ref float w = ref Unsafe.Add(ref w0, (nint)(firstBlock + b) * blockSize + i * blockColumns);
            ref float xs = ref Unsafe.Add(ref x0, (nint)int.CreateTruncating(blockColumnIndices[b]) * blockColumns * batch + b0);
            for (int j = 0; j < blockColumns; j++)
            {
                s = float.MultiplyAddEstimate(Unsafe.Add(ref w, j), Unsafe.Add(ref xs, (nint)j * batch), s);
            }
        }

        return s;
    }

    /// <summary>The absolute columns of row <paramref name="row"/>'s values: group·M + in-group index.</summary>
    private static void DecodeColumns(SemiStructuredTensor a, int row, Span<int> columns)
    {
        byte[] bits = a.IndexArray;
        int n = a.N, m = a.M, width = a.IndexBits;
        long position = (long)row * columns.Length * width;
        int group = 0, slot = 0;
        for (int k = 0; k < columns.Length; k++, position += width)
        {
            columns[k] = group + SemiStructuredTensor.ReadBits(bits, position, width);
            if (++slot == n)
            {
                slot = 0;
                group += m;
            }
        }
    }

    /// <summary>Writes a tile of results into Y [batch, rows]: scratch is [count, batch] (one row per output feature).</summary>
    private static void Store(float[] scratch, Span<float> y, int start, int count, int batch, int rows)
    {
        if (batch == 1)
        {
            scratch.AsSpan(0, count).CopyTo(y.Slice(start, count));
            return;
        }

        for (int b = 0; b < batch; b++)
        {
            Span<float> target = y.Slice(b * rows + start, count);
            for (int t = 0; t < count; t++)
            {
                target[t] = scratch[t * batch + b];
            }
        }
    }

    /// <summary>Xᵀ [columns, batch] in a pooled array, transposed in 16-column strips (in parallel when large).</summary>
    private static float[] Transpose(DenseTensor x, int batch, int columns)
    {
        float[] xt = ArrayPool<float>.Shared.Rent(Math.Max(batch * columns, 1));
        ReadOnlyMemory<float> source = x.Memory;
        const int Strip = 16;
        int strips = (columns + Strip - 1) / Strip;
        void TransposeStrip(int s)
        {
            ReadOnlySpan<float> input = source.Span;
            int c0 = s * Strip, c1 = Math.Min(columns, c0 + Strip);
            for (int b = 0; b < batch; b++)
            {
                ReadOnlySpan<float> row = input.Slice(b * columns, columns);
                for (int c = c0; c < c1; c++)
                {
                    xt[c * batch + b] = row[c];
                }
            }
        }

        if ((long)batch * columns >= ParallelWork)
        {
            Parallel.For(0, strips, TransposeStrip);
        }
        else
        {
            for (int s = 0; s < strips; s++)
            {
                TransposeStrip(s);
            }
        }

        return xt;
    }

    private static void Return(float[]? pooled)
    {
        if (pooled is not null)
        {
            ArrayPool<float>.Shared.Return(pooled);
        }
    }

    /// <summary>Runs body(start, count) over [0, rows) in tiles of <paramref name="tile"/> rows, in parallel when the work is large.</summary>
    private static void ForTiles(int rows, int tile, long work, Action<int, int> body)
    {
        int tiles = (rows + tile - 1) / tile;
        if (work < ParallelWork || tiles == 1)
        {
            for (int t = 0; t < tiles; t++)
            {
                body(t * tile, Math.Min(tile, rows - t * tile));
            }

            return;
        }

        Parallel.For(0, tiles, t => body(t * tile, Math.Min(tile, rows - t * tile)));
    }

    private static int Check(CompressedTensor a, DenseTensor x, DenseTensor y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Columns != a.Columns)
        {
            throw new ArgumentException($"X has {x.Columns} features per row; the {a.Rows}×{a.Columns} weight takes {a.Columns}.", nameof(x));
        }

        if (y.Columns != a.Rows || y.Rows != x.Rows)
        {
            throw new ArgumentException(
                $"Y is {y.Rows}×{y.Columns}; X·Aᵀ for X {x.Rows}×{x.Columns} and A {a.Rows}×{a.Columns} is {x.Rows}×{a.Rows}.", nameof(y));
        }

        if (y.Span.Overlaps(x.Span))
        {
            throw new ArgumentException("Y overlaps X; the product needs a separate output.", nameof(y));
        }

        return x.Rows;
    }
}
