// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Numerics;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.LowRank;

/// <summary>
/// A weight stored as two factors, W ≈ A·B with A = [rows, rank] and B = [rank, columns]: (rows + columns)·rank
/// numbers instead of rows·columns. As layers, x·Wᵀ = (x·Bᵀ)·Aᵀ: B is the first (down) projection, A the second.
/// </summary>
public sealed partial class LowRankTensor : CompressedTensor, ITunableTensor
{
    internal const string KindName = "lowrank";
    private readonly float[] _left;
    private readonly float[] _right;

    /// <summary>Stores the factors, rounded to <paramref name="precision"/>.</summary>
    /// <param name="left">A, [rows, rank].</param>
    /// <param name="right">B, [rank, columns].</param>
    /// <param name="precision">The storage format; the values are rounded to it here, so reconstruction uses what is stored.</param>
    /// <param name="report">What the factorisation did, when known.</param>
    /// <exception cref="ArgumentException">The factors are not matrices with matching inner dimension, the rank is
    /// zero, or a value is not finite.</exception>
    public LowRankTensor(DenseTensor left, DenseTensor right, FactorPrecision precision = FactorPrecision.Float32, LowRankReport? report = null)
        : base(CheckFactors(left, right), right.Columns)
    {
        Rank = left.Columns;
        Precision = precision;
        Report = report;
        _left = Round(left.Span, precision);
        _right = Round(right.Span, precision);
        if (!float.IsFinite(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude<float>(_left))
            || !float.IsFinite(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude<float>(_right)))
        {
            throw new ArgumentException($"A factor holds a value that is not finite in {precision}.", nameof(left));
        }
    }

    private LowRankTensor(int rows, int columns, int rank, float[] left, float[] right, FactorPrecision precision, LowRankReport? report = null)
        : base(rows, columns)
    {
        Rank = rank;
        Precision = precision;
        Report = report;
        _left = left;
        _right = right;
    }

    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <summary>The inner dimension r.</summary>
    public int Rank { get; }

    /// <summary>The factors' storage format.</summary>
    public FactorPrecision Precision { get; }

    /// <summary>What the factorisation did; null when the tensor was read from a file or built from factors.</summary>
    public LowRankReport? Report { get; }

    /// <summary>A = [rows, rank], as stored (a copy).</summary>
    public DenseTensor Left => DenseTensor.FromValues(_left, Rows, Rank);

    /// <summary>B = [rank, columns], as stored (a copy).</summary>
    public DenseTensor Right => DenseTensor.FromValues(_right, Rank, Columns);

    /// <inheritdoc/>
    public override long StorageBits => ((long)Rows + Columns) * Rank * BitsOf(Precision);

    /// <summary>A serializer that also reads low-rank tensors.</summary>
    public static CompressedTensorSerializer Register(CompressedTensorSerializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        return serializer.WithKind(KindName, Read);
    }

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination) =>
        Gemm.Multiply(_left, _right, destination, Rows, Columns, Rank);

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteAttribute("rank", Rank);
        writer.WriteAttribute("precision", Precision.ToString());
        Write(writer, "left", _left, [Rows, Rank]);
        Write(writer, "right", _right, [Rank, Columns]);
    }

    private void Write(CompressedTensorWriter writer, string part, float[] values, long[] shape)
    {
        switch (Precision)
        {
            case FactorPrecision.Float16:
                var half = new Half[values.Length];
                NumericConversions.ConvertToHalf(values, half);
                writer.WriteTensor<Half>(part, SafetensorsDType.F16, shape, half);
                break;
            case FactorPrecision.BFloat16:
                var bf16 = new BFloat16[values.Length];
                NumericConversions.ConvertToBFloat16(values, bf16);
                writer.WriteTensor<BFloat16>(part, SafetensorsDType.BF16, shape, bf16);
                break;
            default:
                writer.WriteTensor<float>(part, SafetensorsDType.F32, shape, values);
                break;
        }
    }

    private static LowRankTensor Read(CompressedTensorReader reader)
    {
        long rank = reader.ReadInt64Attribute("rank");
        if (rank < 1 || rank > Math.Min(reader.Rows, reader.Columns))
        {
            throw new System.IO.InvalidDataException($"{reader.Prefix}: rank {rank} is outside [1, {Math.Min(reader.Rows, reader.Columns)}].");
        }

        string name = reader.ReadAttribute("precision");
        if (!Enum.TryParse(name, ignoreCase: false, out FactorPrecision precision) || !Enum.IsDefined(precision))
        {
            throw new System.IO.InvalidDataException($"{reader.Prefix}: unknown factor precision '{name}'.");
        }

        int r = (int)rank;
        float[] left = ReadFactor(reader, "left", precision, reader.Rows, r);
        float[] right = ReadFactor(reader, "right", precision, r, reader.Columns);
        return new LowRankTensor(reader.Rows, reader.Columns, r, left, right, precision);
    }

    private static float[] ReadFactor(CompressedTensorReader reader, string part, FactorPrecision precision, long rows, long columns)
    {
        float[] values = new float[rows * columns];
        switch (precision)
        {
            case FactorPrecision.Float16:
                NumericConversions.ConvertToSingle(reader.ReadTensor<Half>(part, SafetensorsDType.F16, rows, columns), values);
                return values;
            case FactorPrecision.BFloat16:
                NumericConversions.ConvertToSingle(reader.ReadTensor<BFloat16>(part, SafetensorsDType.BF16, rows, columns), values);
                return values;
            default:
                return reader.ReadTensor<float>(part, SafetensorsDType.F32, rows, columns);
        }
    }

    internal static int BitsOf(FactorPrecision precision) => precision == FactorPrecision.Float32 ? 32 : 16;

    private static float[] Round(ReadOnlySpan<float> values, FactorPrecision precision)
    {
        float[] rounded = values.ToArray();
        switch (precision)
        {
            case FactorPrecision.Float16:
                var half = new Half[rounded.Length];
                NumericConversions.ConvertToHalf(rounded, half);
                NumericConversions.ConvertToSingle(half, rounded);
                break;
            case FactorPrecision.BFloat16:
                var bf16 = new BFloat16[rounded.Length];
                NumericConversions.ConvertToBFloat16(rounded, bf16);
                NumericConversions.ConvertToSingle(bf16, rounded);
                break;
        }

        return rounded;
    }

    private static int CheckFactors(DenseTensor left, DenseTensor right)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        if (left.Rank != 2 || right.Rank != 2 || left.Columns != right.Rows || left.Columns == 0)
        {
            throw new ArgumentException(
                $"The factors [{string.Join(", ", left.Shape.ToArray())}] and [{string.Join(", ", right.Shape.ToArray())}] are not [rows, r] and [r, columns] with r ≥ 1.",
                nameof(right));
        }

        return left.Rows;
    }
}
