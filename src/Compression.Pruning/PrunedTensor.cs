// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Pruning;

/// <summary>
/// A pruned matrix in bitmask storage: the <see cref="SparsityMask"/> (one bit per weight) and the kept values in
/// row-major order (32 bits each), the compressed-tensors "sparse-bitmask" idea. Every pruner returns one; other
/// layouts (CSR, 2:4 compressed, BSR) are built from it.
/// </summary>
/// <remarks>
/// <see cref="CompressedTensor.StorageBits"/> is honest: one bit per weight for the mask plus 32 per kept value, so a
/// matrix pruned to less than 1/32 sparsity is larger than dense. Serialized as kind "pruned" (the mask bytes and the
/// kept values). Decompression writes zeros at pruned positions and the kept values bit for bit.
/// </remarks>
public sealed partial class PrunedTensor : CompressedTensor, ITunableTensor
{
    internal const string KindName = "pruned";
    private readonly float[] _values;

    /// <summary>Keeps the elements of <paramref name="weights"/> that <paramref name="mask"/> keeps.</summary>
    /// <param name="weights">The matrix (values at pruned positions are ignored).</param>
    /// <param name="mask">Which weights are kept; same shape.</param>
    /// <param name="report">What the pruner did, when known.</param>
    /// <exception cref="ArgumentException">The shapes differ.</exception>
    public PrunedTensor(DenseTensor weights, SparsityMask mask, PruningReport? report = null)
        : base(CheckShape(weights, mask).Rows, weights.Columns)
    {
        Mask = mask;
        Report = report;
        _values = new float[mask.KeptCount];
        ReadOnlySpan<float> source = weights.Span;
        byte[] bits = mask.ToBytes();
        long k = 0;
        for (long i = 0; i < source.Length; i++)
        {
            if ((bits[i >> 3] & (1 << (int)(i & 7))) != 0)
            {
                _values[k++] = source[(int)i];
            }
        }
    }

    private PrunedTensor(SparsityMask mask, float[] values, PruningReport? report = null)
        : base(mask.Rows, mask.Columns)
    {
        Mask = mask;
        _values = values;
        Report = report;
    }

    /// <summary>Which weights are kept.</summary>
    public SparsityMask Mask { get; }

    /// <summary>The kept values in row-major order (<see cref="SparsityMask.KeptCount"/> of them).</summary>
    public ReadOnlyMemory<float> Values => _values;

    /// <summary>The pruner's report (sparsity achieved, objective, time); null for a tensor read back from a file.</summary>
    public PruningReport? Report { get; }

    /// <inheritdoc/>
    public override SparsityMask? SparsityMask => Mask;

    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <inheritdoc/>
    public override long StorageBits => Mask.StorageBits + 32L * _values.Length;

    /// <summary>A serializer that also reads pruned tensors.</summary>
    public static CompressedTensorSerializer Register(CompressedTensorSerializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        return serializer.WithKind(KindName, Read);
    }

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination)
    {
        destination.Clear();
        byte[] bits = Mask.ToBytes();
        long k = 0, count = (long)Rows * Columns;
        for (long i = 0; i < count; i++)
        {
            if ((bits[i >> 3] & (1 << (int)(i & 7))) != 0)
            {
                destination[(int)i] = _values[k++];
            }
        }
    }

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer)
    {
        byte[] bits = Mask.ToBytes();
        writer.WriteTensor<byte>("mask", SafetensorsDType.U8, [bits.Length], bits);
        writer.WriteTensor<float>("values", SafetensorsDType.F32, [_values.Length], _values);
    }

    private static PrunedTensor Read(CompressedTensorReader reader)
    {
        long bytes = ((long)reader.Rows * reader.Columns + 7) / 8;
        SparsityMask mask = SparsityMask.FromBytes(reader.Rows, reader.Columns, reader.ReadTensor<byte>("mask", SafetensorsDType.U8, bytes));
        float[] values = reader.ReadTensor<float>("values", SafetensorsDType.F32, mask.KeptCount);
        return new PrunedTensor(mask, values);
    }

    private static DenseTensor CheckShape(DenseTensor weights, SparsityMask mask)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(mask);
        if (weights.Rank != 2 || weights.Rows != mask.Rows || weights.Columns != mask.Columns)
        {
            throw new ArgumentException($"The weights [{string.Join(", ", weights.Shape.ToArray())}] and the mask [{mask.Rows}, {mask.Columns}] differ in shape.", nameof(mask));
        }

        return weights;
    }
}

/// <summary>What a pruner did to one matrix.</summary>
/// <param name="Method">The pruner's name ("magnitude", "nm", "wanda", "sparsegpt", …).</param>
/// <param name="Sparsity">The fraction of weights pruned.</param>
/// <param name="Objective">The layer-output error ‖(W − Ŵ)Xᵀ‖²/n when input statistics were given; NaN otherwise.</param>
/// <param name="Elapsed">Time spent.</param>
public sealed record PruningReport(string Method, double Sparsity, double Objective, TimeSpan Elapsed);
