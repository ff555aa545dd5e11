// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Threading;
using System.Threading.Tasks;
using Compression.Quantization.Packing;
using Compression.Quantization.Primitives;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>Which statistics a format's scales need.</summary>
internal enum StatisticsKind
{
    AbsMax,
    MinMax,
    SumAbs,
}

/// <summary>Statistics of one scale group.</summary>
internal struct GroupStats
{
    public float Min;
    public float Max;
    public float AbsMax;
    public double SumAbs;
    public long Count;

    public void Add(in GroupStats other)
    {
        if (other.Count == 0)
        {
            return;
        }

        Min = Count == 0 ? other.Min : MathF.Min(Min, other.Min);
        Max = Count == 0 ? other.Max : MathF.Max(Max, other.Max);
        AbsMax = MathF.Max(AbsMax, other.AbsMax);
        SumAbs += other.SumAbs;
        Count += other.Count;
    }

    /// <summary>The statistics of one segment; the one kernel both the fused and the two-pass paths use.</summary>
    public static GroupStats Of(ReadOnlySpan<float> x, StatisticsKind kind)
    {
        var stats = new GroupStats { Count = x.Length };
        if (x.IsEmpty)
        {
            return stats;
        }

        switch (kind)
        {
            case StatisticsKind.AbsMax:
                stats.AbsMax = AbsMaxOf(x);
                break;
            case StatisticsKind.MinMax:
                stats.Min = TensorPrimitives.Min(x);
                stats.Max = TensorPrimitives.Max(x);
                stats.AbsMax = AbsMaxOf(x);
                break;
            default:
                stats.SumAbs = SumOfMagnitudes(x);
                stats.AbsMax = AbsMaxOf(x);
                break;
        }

        return stats;
    }

    /// <summary>
    /// Σ|x| in float64, in index order. A float32 vector sum's order depends on the machine's vector width, so its last
    /// bits would differ between machines and from the GPU kernels; this order is fixed, and float64 keeps the error of
    /// long groups (per-tensor ternary) far below a float32 scale's resolution.
    /// </summary>
    private static double SumOfMagnitudes(ReadOnlySpan<float> x)
    {
        double sum = 0;
        foreach (float v in x)
        {
            sum += MathF.Abs(v);
        }

        return sum;
    }

    /// <summary>max |x| (finite inputs): a short vector loop without a library call's set-up, since segments are
    /// often only 16 or 32 long.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float AbsMaxOf(ReadOnlySpan<float> x)
    {
        int i = 0;
        float max = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= 8)
        {
            ref float source = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            // On the bits: non-negative floats order like their patterns and NaN patterns lie above +∞'s, so integer
            // maxima of |x|'s bits give the absmax and keep any NaN visible (a pattern above +∞ is read back as NaN).
            // Four independent accumulators keep the max units busy.
            Vector256<int> magnitude = Vector256.Create(0x7FFF_FFFF);
            Vector256<int> m0 = Vector256<int>.Zero, m1 = m0, m2 = m0, m3 = m0;
            for (; i <= x.Length - 32; i += 32)
            {
                m0 = Vector256.Max(m0, Vector256.LoadUnsafe(ref source, (nuint)i).AsInt32() & magnitude);
                m1 = Vector256.Max(m1, Vector256.LoadUnsafe(ref source, (nuint)i + 8).AsInt32() & magnitude);
                m2 = Vector256.Max(m2, Vector256.LoadUnsafe(ref source, (nuint)i + 16).AsInt32() & magnitude);
                m3 = Vector256.Max(m3, Vector256.LoadUnsafe(ref source, (nuint)i + 24).AsInt32() & magnitude);
            }

            for (; i <= x.Length - 8; i += 8)
            {
                m0 = Vector256.Max(m0, Vector256.LoadUnsafe(ref source, (nuint)i).AsInt32() & magnitude);
            }

            Vector256<int> m = Vector256.Max(Vector256.Max(m0, m1), Vector256.Max(m2, m3));
            Vector128<int> half = Vector128.Max(m.GetLower(), m.GetUpper());
            half = Vector128.Max(half, Vector128.Shuffle(half, Vector128.Create(2, 3, 0, 1)));
            half = Vector128.Max(half, Vector128.Shuffle(half, Vector128.Create(1, 0, 3, 2)));
            int bits = half.ToScalar();
            max = bits > 0x7F80_0000 ? float.NaN : BitConverter.Int32BitsToSingle(bits);
        }

        for (; i < x.Length; i++)
        {
            float a = MathF.Abs(x[i]);
            max = float.IsNaN(a) || float.IsNaN(max) ? float.NaN : MathF.Max(max, a);
        }

        return max;
    }
}

/// <summary>What encoding one segment needs besides its values.</summary>
internal readonly record struct SegmentParameters(float Scale, byte Zero, float TensorScale, float Threshold);

/// <summary>The scales chosen for every group.</summary>
internal sealed class GroupScales(float[] scales, ScaleEncoding encoding)
{
    public float[] Scales { get; } = scales;
    public ScaleEncoding Encoding { get; } = encoding;
    public byte[]? ZeroPoints { get; init; }
    public float Global { get; init; } = 1f;
    public DoubleQuantization? DoubleQuantization { get; init; }
    public float[]? Thresholds { get; init; }

    public SegmentParameters For(int group) =>
        new(Scales[group], ZeroPoints?[group] ?? 0, Global, Thresholds?[group] ?? 0);
}

/// <summary>
/// The shape every RTN format shares: statistics per group, a scale (and zero point) per group, then every element
/// encoded against its group's scale and each row packed. Formats supply the format-specific steps; this class runs
/// them over rows in parallel.
/// </summary>
/// <remarks>
/// When every group lies within one row (per-channel, per-group) and a group's scale depends only on its own
/// statistics (and, for NVFP4, the tensor's absmax), statistics, scales, codes and packing happen in one pass per row
/// while the row is in cache. Otherwise (per-tensor, per-block, clipping search, NF4's double quantization) the
/// statistics of all groups are gathered first. Both paths use the same kernels in the same order, so they give the
/// same bits.
/// </remarks>
internal abstract class GroupedFormat : NumberFormat
{
    /// <summary>Bits per code for <see cref="BitPacker"/>.</summary>
    internal abstract int CodeBits { get; }

    /// <inheritdoc/>
    public override double ElementBits => CodeBits;

    internal virtual int PackedRowLength(int columns) => BitPacker.PackedLength(columns, CodeBits);

    internal virtual void PackRow(ReadOnlySpan<byte> codes, Span<byte> destination) => BitPacker.Pack(codes, CodeBits, destination);

    internal virtual void UnpackRow(ReadOnlySpan<byte> packed, Span<byte> codes) => BitPacker.Unpack(packed, CodeBits, codes);

    /// <summary>The statistics the scales need.</summary>
    private protected virtual StatisticsKind Statistics(RtnOptions options) => StatisticsKind.AbsMax;

    /// <summary>Whether each group's scale follows from its own statistics alone (plus <see cref="TensorScale"/>).</summary>
    private protected virtual bool ScalesAreLocal(RtnOptions options) => true;

    /// <summary>Whether <see cref="TensorScale"/> needs the tensor's absmax.</summary>
    private protected virtual bool UsesTensorScale => false;

    /// <summary>The per-tensor scale from the tensor's absmax (NVFP4); 1 otherwise.</summary>
    private protected virtual float TensorScale(float tensorAbsMax) => 1f;

    /// <summary>The scale encoding of the result.</summary>
    private protected virtual ScaleEncoding Encoding(RtnOptions options) => options.ScaleStorage;

    /// <summary>One group's scale (rounded to its storage type) and zero point.</summary>
    private protected abstract SegmentParameters ChooseGroup(in GroupStats stats, float tensorScale, RtnOptions options);

    /// <summary>Whether <see cref="QuantizeRow"/> handles whole rows (block formats with a fixed block size).</summary>
    private protected virtual bool HasRowKernel => false;

    /// <summary>Quantizes a whole row in one call: scales of its groups and its codes; false at a non-finite weight.</summary>
    private protected virtual bool QuantizeRow(ReadOnlySpan<float> row, float tensorScale, Span<float> scales, Span<byte> codes) =>
        throw new NotSupportedException();

    /// <summary>Encodes one segment of a row; one code per byte.</summary>
    private protected abstract void EncodeSegment(ReadOnlySpan<float> x, in SegmentParameters parameters, RtnOptions options, Span<byte> codes);

    /// <summary>Decodes one segment of a row.</summary>
    private protected abstract void DecodeSegment(ReadOnlySpan<byte> codes, QuantizedTensor tensor, int group, Span<float> destination);

    /// <summary>Chooses every group's scale from all statistics (the two-pass path). The default chooses group by group.</summary>
    private protected virtual GroupScales ChooseScales(DenseTensor weight, ScaleLayout layout, GroupStats[] stats, RtnOptions options, ParallelOptions parallel)
    {
        if (options.Clipping is not null && SupportsScaleSearch)
        {
            return SearchScales(weight, layout, stats, options, parallel);
        }

        float tensorScale = 1f;
        if (UsesTensorScale)
        {
            float amax = 0;
            foreach (GroupStats group in stats)
            {
                amax = MathF.Max(amax, group.AbsMax);
            }

            tensorScale = TensorScale(amax);
        }

        var scales = new float[stats.Length];
        byte[]? zeros = options.Symmetric ? null : new byte[stats.Length];
        var thresholds = new float[stats.Length];
        for (int g = 0; g < stats.Length; g++)
        {
            SegmentParameters p = ChooseGroup(stats[g], tensorScale, options);
            scales[g] = p.Scale;
            thresholds[g] = p.Threshold;
            if (zeros is not null)
            {
                zeros[g] = p.Zero;
            }
        }

        return new GroupScales(scales, Encoding(options)) { ZeroPoints = zeros, Global = tensorScale, Thresholds = thresholds };
    }

    internal sealed override QuantizedTensor Quantize(DenseTensor weight, RtnOptions options, CancellationToken cancellationToken,
        QuantizedTensorStorage? storage = null)
    {
        int rows = weight.Rows, columns = weight.Columns;
        Granularity granularity = options.EffectiveGranularity;
        var layout = new ScaleLayout(granularity, rows, columns);
        int stride = PackedRowLength(columns);
        // Every byte is written by the row packers, so the array need not be zeroed first.
        byte[] packed = storage?.PackedCodes ?? GC.AllocateUninitializedArray<byte>(rows * stride);
        int badRow = -1;
        Memory<float> data = weight.Memory;
        StatisticsKind kind = Statistics(options);
        var parallel = new ParallelOptions { CancellationToken = cancellationToken };
        GroupScales scales;

        if (ScalesAreLocal(options) && layout.GroupRows == rows)
        {
            float tensorScale = UsesTensorScale && weight.Length > 0 ? TensorScale(AbsMax(data, rows, columns, parallel)) : 1f;
            float[] values = storage?.Scales ?? new float[layout.GroupCount];
            byte[]? zeros = options.Symmetric ? null : storage?.ZeroPoints ?? new byte[layout.GroupCount];
            // Byte-wide codes are their own packing: encode straight into the result, skipping a copy.
            bool direct = CodeBits == 8 && stride == columns;
            Parallel.For(0, rows, parallel, () => new byte[columns], [MethodImpl(MethodImplOptions.AggressiveOptimization)] (r, state, codes) =>
            {
                ReadOnlySpan<float> row = data.Span.Slice(r * columns, columns);
                ReadOnlySpan<float> next = r + 1 < rows ? data.Span.Slice((r + 1) * columns, columns) : default;
                Span<byte> target = direct ? packed.AsSpan(r * stride, stride) : codes;
                if (HasRowKernel)
                {
                    // (No prefetch of the next row here: these kernels are arithmetic-bound and measured slower with it.)
                    if (!QuantizeRow(row, tensorScale, values.AsSpan(r * layout.SegmentsPerRow, layout.SegmentsPerRow), target))
                    {
                        Interlocked.CompareExchange(ref badRow, r, -1);
                        state.Stop();
                        return codes;
                    }

                    if (!direct)
                    {
                        PackRow(codes, packed.AsSpan(r * stride, stride));
                    }

                    return codes;
                }

                for (int s = 0; s < layout.SegmentsPerRow; s++)
                {
                    (int start, int length) = layout.Segment(s);
                    ReadOnlySpan<float> x = row.Slice(start, length);
                    GroupStats stats = GroupStats.Of(x, kind);
                    if (!float.IsFinite(stats.AbsMax))
                    {
                        Interlocked.CompareExchange(ref badRow, r, -1);
                        state.Stop();
                        return codes;
                    }

                    SegmentParameters p = ChooseGroup(stats, tensorScale, options);
                    int group = layout.GroupOf(r, s);
                    values[group] = p.Scale;
                    if (zeros is not null)
                    {
                        zeros[group] = p.Zero;
                    }

                    // Encoded a chunk at a time, each preceded by a prefetch of the same columns of the next row.
                    for (int k = 0; k < length; k += CachePrefetch.Chunk)
                    {
                        int n = Math.Min(CachePrefetch.Chunk, length - k);
                        if (!next.IsEmpty)
                        {
                            CachePrefetch.Request(next.Slice(start + k, n));
                        }

                        EncodeSegment(x.Slice(k, n), p, options, target.Slice(start + k, n));
                    }
                }

                if (!direct)
                {
                    PackRow(codes, packed.AsSpan(r * stride, stride));
                }

                return codes;
            }, _ => { });
            ThrowIfNonFinite(weight, badRow);
            scales = new GroupScales(values, Encoding(options)) { ZeroPoints = zeros, Global = tensorScale };
        }
        else
        {
            GroupStats[] stats = CollectStats(data, layout, kind, parallel);
            for (int g = 0; g < stats.Length; g++)
            {
                if (!float.IsFinite(stats[g].AbsMax))
                {
                    ThrowIfNonFinite(weight, layout.GroupExtent(g).FirstRow, layout.GroupExtent(g).RowCount);
                }
            }

            scales = ChooseScales(weight, layout, stats, options, parallel);
            Parallel.For(0, rows, parallel, () => new byte[columns], [MethodImpl(MethodImplOptions.AggressiveOptimization)] (r, _, codes) =>
            {
                ReadOnlySpan<float> row = data.Span.Slice(r * columns, columns);
                for (int s = 0; s < layout.SegmentsPerRow; s++)
                {
                    (int start, int length) = layout.Segment(s);
                    EncodeSegment(row.Slice(start, length), scales.For(layout.GroupOf(r, s)), options, codes.AsSpan(start, length));
                }

                PackRow(codes, packed.AsSpan(r * stride, stride));
                return codes;
            }, _ => { });
        }

        return new QuantizedTensor(this, granularity, rows, columns, packed, stride, scales.Scales, scales.Encoding,
            scales.ZeroPoints, scales.Global, scales.DoubleQuantization);
    }

    internal sealed override void Dequantize(QuantizedTensor tensor, Span<float> destination)
    {
        int rows = tensor.Rows, columns = tensor.Columns, stride = tensor.RowStride;
        ScaleLayout layout = tensor.Layout;
        float[] result = ArrayPool<float>.Shared.Rent(rows * columns);
        try
        {
            Parallel.For(0, rows, () => new byte[columns], [MethodImpl(MethodImplOptions.AggressiveOptimization)] (r, _, codes) =>
            {
                UnpackRow(tensor.PackedCodesArray.AsSpan(r * stride, stride), codes);
                Span<float> row = result.AsSpan(r * columns, columns);
                for (int s = 0; s < layout.SegmentsPerRow; s++)
                {
                    (int start, int length) = layout.Segment(s);
                    DecodeSegment(codes.AsSpan(start, length), tensor, layout.GroupOf(r, s), row.Slice(start, length));
                }

                return codes;
            }, _ => { });
            result.AsSpan(0, rows * columns).CopyTo(destination);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(result);
        }
    }

    // ---- Single-segment hooks for algorithms that quantize one group at a time against changing values (GPTQ). ----

    /// <summary>Whether <see cref="DecodeSegment(ReadOnlySpan{byte}, in SegmentParameters, RtnOptions, Span{float})"/> is implemented, i.e.
    /// a group's values can be coded and decoded from its <see cref="SegmentParameters"/> alone.</summary>
    internal virtual bool SupportsSegmentCodec => false;

    /// <summary>The scale encoding a result of these options carries.</summary>
    internal ScaleEncoding ScaleEncodingFor(RtnOptions options) => Encoding(options);

    /// <summary>The per-tensor scale from an absmax (NVFP4's g); 1 for formats without one.</summary>
    internal float TensorScaleFor(float tensorAbsMax) => UsesTensorScale ? TensorScale(tensorAbsMax) : 1f;

    /// <summary>The parameters the format chooses for a group holding exactly the values <paramref name="x"/> (one row's
    /// segment), the same as the whole-matrix driver chooses for the same values.</summary>
    internal virtual SegmentParameters ChooseSegment(ReadOnlySpan<float> x, float tensorScale, RtnOptions options)
    {
        GroupStats stats = GroupStats.Of(x, Statistics(options));
        return options.Clipping is not null && SupportsScaleSearch ? SearchScale(x, stats, tensorScale, options) : ChooseGroup(stats, tensorScale, options);
    }

    // ---- The scale search of FP, MX and NVFP4 formats (RtnOptions.Clipping). ----

    /// <summary>Whether <see cref="RtnOptions.Clipping"/> runs <see cref="SearchScale"/> (FP, MX, NVFP4; integer formats
    /// have their own range search).</summary>
    internal virtual bool SupportsScaleSearch => false;

    /// <summary>The next representable scale above <paramref name="scale"/> where scales are rounded to a coarse grid
    /// (MX: ×2, NVFP4: the next E4M3 value), so that the format's own choice, rounded down, can still clip; null otherwise.</summary>
    private protected virtual float? ScaleAbove(float scale) => null;

    /// <summary>
    /// The least-error scale of one group: the candidates are the format's own choice, the next representable scale
    /// above it (<see cref="ScaleAbove"/>), and the format's choice for the shrunk statistics p·(min, max, max |w|) for
    /// p = 1 − 1/Grid, … down to 1 − MaxShrink (each distinct scale tried once); the one with the least
    /// Σ|x − dq(q(x))|^Norm (float64) wins, the format's own choice on ties. Every candidate is a scale the format can
    /// store, so the result decodes like any other.
    /// </summary>
    private protected SegmentParameters SearchScale(ReadOnlySpan<float> x, GroupStats stats, float tensorScale, RtnOptions options)
    {
        ClippingSearch search = options.Clipping!;
        byte[] codes = ArrayPool<byte>.Shared.Rent(Math.Max(1, x.Length));
        float[] decoded = ArrayPool<float>.Shared.Rent(Math.Max(1, x.Length));
        try
        {
            SegmentParameters best = ChooseGroup(stats, tensorScale, options);
            double bestError = SearchError(x, best, options, search.Norm, codes, decoded);
            if (ScaleAbove(best.Scale) is float above)
            {
                Consider(best with { Scale = above }, x, options, search.Norm, codes, decoded, ref best, ref bestError);
            }

            float previous = best.Scale;
            int steps = (int)(search.MaxShrink * search.Grid);
            for (int i = 1; i <= steps; i++)
            {
                float p = 1f - (float)i / search.Grid;
                GroupStats shrunk = stats;
                shrunk.AbsMax *= p;
                shrunk.Min *= p;
                shrunk.Max *= p;
                SegmentParameters candidate = ChooseGroup(shrunk, tensorScale, options);
                if (candidate.Scale == previous)
                {
                    continue;
                }

                previous = candidate.Scale;
                Consider(candidate, x, options, search.Norm, codes, decoded, ref best, ref bestError);
            }

            return best;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(codes);
            ArrayPool<float>.Shared.Return(decoded);
        }
    }

    private void Consider(SegmentParameters candidate, ReadOnlySpan<float> x, RtnOptions options, double norm, byte[] codes, float[] decoded,
        ref SegmentParameters best, ref double bestError)
    {
        if (candidate.Scale == 0 || !float.IsFinite(candidate.Scale))
        {
            return;
        }

        double error = SearchError(x, candidate, options, norm, codes, decoded);
        if (error < bestError)
        {
            best = candidate;
            bestError = error;
        }
    }

    private double SearchError(ReadOnlySpan<float> x, in SegmentParameters parameters, RtnOptions options, double norm, byte[] codes, float[] decoded)
    {
        Span<byte> c = codes.AsSpan(0, x.Length);
        Span<float> d = decoded.AsSpan(0, x.Length);
        EncodeSegment(x, parameters, options, c);
        DecodeSegment(c, parameters, options, d);
        double error = 0;
        for (int i = 0; i < x.Length; i++)
        {
            error += Math.Pow(Math.Abs((double)d[i] - x[i]), norm);
        }

        return error;
    }

    /// <summary>The two-pass path under a scale search: every group searched on its own values (groups in parallel).</summary>
    private GroupScales SearchScales(DenseTensor weight, ScaleLayout layout, GroupStats[] stats, RtnOptions options, ParallelOptions parallel)
    {
        float amax = 0;
        foreach (GroupStats group in stats)
        {
            amax = MathF.Max(amax, group.AbsMax);
        }

        float tensorScale = UsesTensorScale ? TensorScale(amax) : 1f;
        var scales = new float[stats.Length];
        // The search is most of the run: the token (in parallel) is checked before each group.
        Parallel.For(0, stats.Length, parallel, g =>
        {
            (int firstRow, int rowCount, int segment) = layout.GroupExtent(g);
            (int start, int length) = layout.Segment(segment);
            float[] values = new float[rowCount * length];
            for (int r = 0; r < rowCount; r++)
            {
                weight.Span.Slice((firstRow + r) * layout.Columns + start, length).CopyTo(values.AsSpan(r * length, length));
            }

            scales[g] = SearchScale(values, stats[g], tensorScale, options).Scale;
        });

        return new GroupScales(scales, Encoding(options)) { Global = tensorScale };
    }

    /// <summary>Encodes values against a group's parameters (finite inputs); one code per byte.</summary>
    internal void EncodeSegmentWith(ReadOnlySpan<float> x, in SegmentParameters parameters, RtnOptions options, Span<byte> codes) =>
        EncodeSegment(x, parameters, options, codes);

    /// <summary>Decodes codes of one group from its parameters, as <see cref="Dequantize"/> would.</summary>
    internal virtual void DecodeSegment(ReadOnlySpan<byte> codes, in SegmentParameters parameters, RtnOptions options, Span<float> destination) =>
        throw new NotSupportedException($"{Name} cannot decode a segment from its parameters alone.");

    /// <summary>Names the first non-finite weight in rows [firstRow, firstRow + count), the policy of every format.</summary>
    private static void ThrowIfNonFinite(DenseTensor weight, int firstRow, int count = 1)
    {
        if (firstRow < 0)
        {
            return;
        }

        ReadOnlySpan<float> values = weight.Span.Slice(firstRow * weight.Columns, count * weight.Columns);
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                throw new ArgumentException(
                    $"rtn: the weight holds {values[i]} at ({firstRow + i / weight.Columns}, {i % weight.Columns}); weights must be finite.", "weight");
            }
        }
    }

    /// <summary>Rounds a scale to its storage type so codes are computed against exactly what is stored.</summary>
    /// <exception cref="ArgumentException">The scale overflows FP16 storage.</exception>
    private protected static float RoundScale(float scale, ScaleEncoding encoding)
    {
        float rounded = encoding switch
        {
            ScaleEncoding.Float16 => (float)(Half)scale,
            ScaleEncoding.BFloat16 => (float)(BFloat16)scale,
            _ => scale,
        };
        return float.IsFinite(rounded)
            ? rounded
            : throw new ArgumentException($"Scale {scale} overflows {encoding} storage; store scales as Float32.", "options");
    }

    /// <summary>max |w| over the whole matrix, rows spread over the cores (max is exact in any order; NaN propagates).</summary>
    private static float AbsMax(Memory<float> data, int rows, int columns, ParallelOptions parallel)
    {
        int chunks = Math.Min(rows, Environment.ProcessorCount * 4);
        var maxima = new float[chunks];
        Parallel.For(0, chunks, parallel, chunk =>
        {
            int first = (int)((long)rows * chunk / chunks), last = (int)((long)rows * (chunk + 1) / chunks);
            maxima[chunk] = last > first ? GroupStats.AbsMaxOf(data.Span.Slice(first * columns, (last - first) * columns)) : 0f;
        });

        float max = 0;
        foreach (float m in maxima)
        {
            max = float.IsNaN(m) || float.IsNaN(max) ? float.NaN : MathF.Max(max, m);
        }

        return max;
    }

    private static GroupStats[] CollectStats(Memory<float> data, ScaleLayout layout, StatisticsKind kind, ParallelOptions parallel)
    {
        int rows = layout.Rows, columns = layout.Columns, segments = layout.SegmentsPerRow;
        var perSegment = new GroupStats[rows * segments];
        Parallel.For(0, rows, parallel, r =>
        {
            ReadOnlySpan<float> row = data.Span.Slice(r * columns, columns);
            for (int s = 0; s < segments; s++)
            {
                (int start, int length) = layout.Segment(s);
                perSegment[r * segments + s] = GroupStats.Of(row.Slice(start, length), kind);
            }
        });

        var groups = new GroupStats[layout.GroupCount];
        for (int r = 0; r < rows; r++)
        {
            for (int s = 0; s < segments; s++)
            {
                groups[layout.GroupOf(r, s)].Add(perSegment[r * segments + s]);
            }
        }

        return groups;
    }
}
