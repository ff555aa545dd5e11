// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers;
using System.Numerics.Tensors;
using System.Threading;
using System.Threading.Tasks;
using Compression.Quantization.Packing;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>Statistics of one scale group.</summary>
internal struct GroupStats
{
    public float Min;
    public float Max;
    public double SumAbs;
    public long Count;

    public readonly float AbsMax => MathF.Max(MathF.Abs(Min), MathF.Abs(Max));

    public void Add(in GroupStats other)
    {
        if (other.Count == 0)
        {
            return;
        }

        Min = Count == 0 ? other.Min : MathF.Min(Min, other.Min);
        Max = Count == 0 ? other.Max : MathF.Max(Max, other.Max);
        SumAbs += other.SumAbs;
        Count += other.Count;
    }
}

/// <summary>The scales chosen for every group.</summary>
internal sealed class GroupScales(float[] scales, ScaleEncoding encoding)
{
    public float[] Scales { get; } = scales;
    public ScaleEncoding Encoding { get; } = encoding;
    public byte[]? ZeroPoints { get; init; }
    public float Global { get; init; } = 1f;
    public DoubleQuantization? DoubleQuantization { get; init; }
    public float[]? Thresholds { get; init; }
}

/// <summary>
/// The shape every RTN format shares: statistics per group, a scale (and zero point) per group, then every element
/// encoded against its group's scale and each row packed. Formats supply the three format-specific steps; this class
/// runs them over rows in parallel. Orchestration only: the per-element work is in the formats' span kernels.
/// </summary>
internal abstract class GroupedFormat : NumberFormat
{
    /// <summary>Bits per code for <see cref="BitPacker"/>.</summary>
    internal abstract int CodeBits { get; }

    /// <inheritdoc/>
    public override double ElementBits => CodeBits;

    internal virtual int PackedRowLength(int columns) => BitPacker.PackedLength(columns, CodeBits);

    internal virtual void PackRow(ReadOnlySpan<byte> codes, Span<byte> destination) => BitPacker.Pack(codes, CodeBits, destination);

    internal virtual void UnpackRow(ReadOnlySpan<byte> packed, Span<byte> codes) => BitPacker.Unpack(packed, CodeBits, codes);

    /// <summary>Chooses every group's scale (rounded to its storage type) and zero point.</summary>
    private protected abstract GroupScales ChooseScales(DenseTensor weight, ScaleLayout layout, GroupStats[] stats, RtnOptions options);

    /// <summary>Encodes one segment of a row against its group's scale; one code per byte.</summary>
    private protected abstract void EncodeSegment(ReadOnlySpan<float> x, GroupScales scales, int group, RtnOptions options, Span<byte> codes);

    /// <summary>Decodes one segment of a row.</summary>
    private protected abstract void DecodeSegment(ReadOnlySpan<byte> codes, QuantizedTensor tensor, int group, Span<float> destination);

    internal sealed override QuantizedTensor Quantize(DenseTensor weight, RtnOptions options, CancellationToken cancellationToken)
    {
        int rows = weight.Rows, columns = weight.Columns;
        Granularity granularity = options.EffectiveGranularity;
        var layout = new ScaleLayout(granularity, rows, columns);
        GroupStats[] stats = CollectStats(weight, layout, cancellationToken);
        GroupScales scales = ChooseScales(weight, layout, stats, options);

        int stride = PackedRowLength(columns);
        var packed = new byte[rows * stride];
        Memory<float> data = weight.Memory;
        Parallel.For(0, rows, new ParallelOptions { CancellationToken = cancellationToken }, () => new byte[columns], (r, _, codes) =>
        {
            ReadOnlySpan<float> row = data.Span.Slice(r * columns, columns);
            for (int s = 0; s < layout.SegmentsPerRow; s++)
            {
                (int start, int length) = layout.Segment(s);
                EncodeSegment(row.Slice(start, length), scales, layout.GroupOf(r, s), options, codes.AsSpan(start, length));
            }

            PackRow(codes, packed.AsSpan(r * stride, stride));
            return codes;
        }, _ => { });

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
            Parallel.For(0, rows, () => new byte[columns], (r, _, codes) =>
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

    /// <summary>Rounds scales to their storage type so that the codes are computed against exactly what is stored.</summary>
    /// <exception cref="ArgumentException">A scale overflows FP16 storage.</exception>
    private protected static void RoundScales(float[] scales, ScaleEncoding encoding)
    {
        for (int i = 0; i < scales.Length; i++)
        {
            float rounded = encoding switch
            {
                ScaleEncoding.Float16 => (float)(Half)scales[i],
                ScaleEncoding.BFloat16 => (float)(BFloat16)scales[i],
                _ => scales[i],
            };
            if (!float.IsFinite(rounded))
            {
                throw new ArgumentException($"Scale {scales[i]} of group {i} overflows {encoding} storage; store scales as Float32.", "options");
            }

            scales[i] = rounded;
        }
    }

    private static GroupStats[] CollectStats(DenseTensor weight, ScaleLayout layout, CancellationToken cancellationToken)
    {
        int rows = layout.Rows, columns = layout.Columns, segments = layout.SegmentsPerRow;
        var perSegment = new GroupStats[rows * segments];
        Memory<float> memory = weight.Memory;
        Parallel.For(0, rows, new ParallelOptions { CancellationToken = cancellationToken }, r =>
        {
            ReadOnlySpan<float> row = memory.Span.Slice(r * columns, columns);
            for (int s = 0; s < segments; s++)
            {
                (int start, int length) = layout.Segment(s);
                ReadOnlySpan<float> x = row.Slice(start, length);
                perSegment[r * segments + s] = new GroupStats
                {
                    Min = TensorPrimitives.Min(x),
                    Max = TensorPrimitives.Max(x),
                    SumAbs = TensorPrimitives.SumOfMagnitudes(x),
                    Count = length,
                };
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
