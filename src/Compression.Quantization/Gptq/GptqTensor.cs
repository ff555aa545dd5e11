// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Compression.Quantization.Rotation;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// A matrix quantized by <see cref="GptqQuantizer"/>: a <see cref="QuantizedTensor"/> whose columns are stored in an
/// order where every group is contiguous, plus the permutation back to the original column order.
/// </summary>
/// <remarks>
/// <para>Without act-order, and with <see cref="GptqOptions.StaticGroups"/>, the stored order is the original one and
/// <see cref="Permutation"/> is the identity. With act-order and dynamic groups the stored order is the processing
/// order (descending diag(H)), where groups are consecutive; a kernel then either reorders the activations by
/// <see cref="Permutation"/> or reads each original column's group from <see cref="GroupIndex"/> (the reference's
/// <c>g_idx</c>).</para>
/// <para>Serialized as kind "gptq": the nested quantized tensor under <c>.quantized</c> and the permutation as an
/// int32 tensor <c>.permutation</c>. The <see cref="Report"/> is not stored.</para>
/// <para>Quantized after pruning (the prior stage's mask kept, see <see cref="GptqQuantizer"/>), it carries the
/// <see cref="SparsityMask"/>: the pruned weights decode to exactly 0, and the mask is stored too (one bit per weight,
/// counted in <see cref="StorageBits"/>, serialized as the U8 tensor <c>.mask</c> with the attribute
/// <c>sparsity_mask = bitmask</c>), so a later stage still knows which zeros are structural.</para>
/// </remarks>
public sealed partial class GptqTensor : CompressedTensor, ITunableTensor
{
    internal const string KindName = "gptq";
    private const string MaskAttribute = "sparsity_mask";
    private const string MaskLayout = "bitmask";

    private readonly int[] _permutation;
    private readonly int[] _groupIndex;
    private readonly bool _identity;
    private readonly SparsityMask? _mask;

    /// <summary>Wraps a quantized matrix stored in permuted column order.</summary>
    /// <param name="quantized">The codes and scales, columns in stored order.</param>
    /// <param name="permutation">Stored column → original column; null for the identity.</param>
    /// <param name="report">The run's report, when known.</param>
    /// <param name="rotation">The Hadamard rotation the codes live in (MR-GPTQ), or null.</param>
    /// <param name="sparsityMask">The weights kept by a prior pruning stage (original column order), whose pruned
    /// weights the codes decode to 0; null for a dense result.</param>
    /// <exception cref="ArgumentException"><paramref name="permutation"/> is not a permutation of the columns, the
    /// rotation's block does not divide them, the mask differs in shape, or both a rotation and a mask are given.</exception>
    public GptqTensor(QuantizedTensor quantized, IReadOnlyList<int>? permutation = null, GptqReport? report = null,
        HadamardRotationParameters? rotation = null, SparsityMask? sparsityMask = null)
        : base(quantized?.Rows ?? 0, quantized?.Columns ?? 0)
    {
        ArgumentNullException.ThrowIfNull(quantized);
        if (sparsityMask is not null && (sparsityMask.Rows != quantized.Rows || sparsityMask.Columns != quantized.Columns))
        {
            throw new ArgumentException(
                $"The sparsity mask [{sparsityMask.Rows}, {sparsityMask.Columns}] differs in shape from the quantized [{quantized.Rows}, {quantized.Columns}].",
                nameof(sparsityMask));
        }

        if (sparsityMask is not null && rotation is not null)
        {
            throw new ArgumentException("A rotated (MR-GPTQ) tensor cannot carry a sparsity mask: its codes live in a basis that mixes columns.",
                nameof(sparsityMask));
        }

        _mask = sparsityMask;
        if (rotation is not null && (rotation.BlockSize <= 0 || quantized.Columns % rotation.BlockSize != 0))
        {
            throw new ArgumentException($"The rotation's block of {rotation.BlockSize} must divide the {quantized.Columns} columns.", nameof(rotation));
        }

        Rotation = rotation;
        _permutation = permutation is null ? Enumerable.Range(0, quantized.Columns).ToArray() : permutation.ToArray();
        if (!IsPermutation(_permutation, quantized.Columns))
        {
            throw new ArgumentException($"The permutation must hold each of the {quantized.Columns} column indices exactly once.", nameof(permutation));
        }

        Quantized = quantized;
        Report = report;
        _identity = _permutation.Select((p, i) => p == i).All(x => x);
        int groupSize = quantized.Layout.SegmentWidth;
        _groupIndex = new int[Columns];
        for (int stored = 0; stored < Columns; stored++)
        {
            _groupIndex[_permutation[stored]] = stored / groupSize;
        }
    }

    /// <summary>The codes and scales, columns in stored order.</summary>
    public QuantizedTensor Quantized { get; }

    /// <summary>Stored column → original column (identity without act-order or with static groups).</summary>
    public IReadOnlyList<int> Permutation => _permutation;

    /// <summary>Per original column, the index of its group along a row (the reference's <c>g_idx</c>); 0 everywhere
    /// per-channel.</summary>
    public IReadOnlyList<int> GroupIndex => _groupIndex;

    /// <summary>Whether <see cref="Permutation"/> is the identity.</summary>
    public bool IsIdentityOrder => _identity;

    /// <summary>The run's objective, losses, dampening and time; null for a tensor read back from a checkpoint.</summary>
    public GptqReport? Report { get; }

    /// <summary>
    /// The block-wise Hadamard rotation R the codes were computed in (MR-GPTQ), or null. Inference with the rotated
    /// weight (<see cref="DecompressRotated"/>) applies R to the activations first (<see cref="HadamardRotation.RotateActivations"/>);
    /// <see cref="CompressedTensor.Decompress"/> returns the weight in the original basis.
    /// </summary>
    public HadamardRotationParameters? Rotation { get; }

    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <summary>The prior pruning stage's mask, whose pruned weights decode to exactly 0; null for a dense result.</summary>
    public override SparsityMask? SparsityMask => _mask;

    /// <inheritdoc/>
    public override long StorageBits => Quantized.StorageBits + (IsIdentityOrder ? 0 : 32L * Columns) + (_mask?.StorageBits ?? 0);

    /// <summary>A serializer that also reads GPTQ tensors (and the quantized tensors inside them).</summary>
    public static CompressedTensorSerializer Register(CompressedTensorSerializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        if (!serializer.Kinds.Contains(QuantizedTensor.KindName))
        {
            serializer = QuantizedTensor.Register(serializer);
        }

        return serializer.WithKind(KindName, Read);
    }

    /// <summary>The dequantized weight in the basis its codes live in: W·Rᵀ under a rotation (for inference with
    /// rotated activations), else the same as <see cref="CompressedTensor.Decompress"/>.</summary>
    public DenseTensor DecompressRotated()
    {
        var result = new DenseTensor(Rows, Columns);
        DecompressInStoredBasis(result.Span);
        return result;
    }

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination)
    {
        if (Rotation is null)
        {
            DecompressInStoredBasis(destination);
            return;
        }

        // W = (W·Rᵀ)·R: undo the rotation, R being orthonormal.
        DenseTensor rotated = DecompressRotated();
        new HadamardRotation(Rotation).UnrotateWeight(rotated).Span.CopyTo(destination);
    }

    private void DecompressInStoredBasis(Span<float> destination)
    {
        if (IsIdentityOrder)
        {
            Quantized.DecompressTo(destination);
            return;
        }

        float[] stored = GC.AllocateUninitializedArray<float>(Rows * Columns);
        Quantized.DecompressTo(stored);
        int columns = Columns;
        int[] permutation = _permutation;
        // Rows scatter independently: each in place through a copy of itself, rows in parallel.
        System.Threading.Tasks.Parallel.For(0, Rows, () => new float[columns], (r, _, row) =>
        {
            Span<float> target = stored.AsSpan(r * columns, columns);
            target.CopyTo(row);
            for (int k = 0; k < columns; k++)
            {
                target[permutation[k]] = row[k];
            }

            return row;
        }, _ => { });
        stored.AsSpan().CopyTo(destination);
    }

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteChild("quantized", Quantized);
        writer.WriteTensor<int>("permutation", SafetensorsDType.I32, [Columns], _permutation);
        if (_mask is not null)
        {
            byte[] bits = _mask.ToBytes();
            writer.WriteAttribute(MaskAttribute, MaskLayout);
            writer.WriteTensor<byte>("mask", SafetensorsDType.U8, [bits.Length], bits);
        }
        if (Rotation is not null)
        {
            foreach ((string key, string value) in Rotation.ToMetadata())
            {
                writer.WriteAttribute(key, value);
            }
        }
    }

    private static GptqTensor Read(CompressedTensorReader reader)
    {
        if (reader.ReadChild("quantized") is not QuantizedTensor quantized || quantized.Rows != reader.Rows || quantized.Columns != reader.Columns)
        {
            throw new InvalidDataException($"GPTQ tensor '{reader.Prefix}' does not hold a {reader.Rows}×{reader.Columns} quantized tensor.");
        }

        int[] permutation = reader.ReadTensor<int>("permutation", SafetensorsDType.I32, reader.Columns);
        if (!IsPermutation(permutation, reader.Columns))
        {
            throw new InvalidDataException($"GPTQ tensor '{reader.Prefix}' has a column permutation that is not one.");
        }

        HadamardRotationParameters? rotation = null;
        if (reader.TryReadAttribute(HadamardRotationParameters.BlockSizeKey, out string? block))
        {
            var metadata = new Dictionary<string, string> { [HadamardRotationParameters.BlockSizeKey] = block };
            if (reader.TryReadAttribute(HadamardRotationParameters.SignSeedKey, out string? seed))
            {
                metadata[HadamardRotationParameters.SignSeedKey] = seed;
            }

            rotation = HadamardRotationParameters.FromMetadata(metadata);
        }

        SparsityMask? mask = null;
        if (reader.TryReadAttribute(MaskAttribute, out string? layout))
        {
            if (layout != MaskLayout)
            {
                throw new InvalidDataException($"GPTQ tensor '{reader.Prefix}' has a sparsity mask in layout '{layout}'; only '{MaskLayout}' is known.");
            }

            long bytes = ((long)reader.Rows * reader.Columns + 7) / 8;
            try
            {
                mask = SparsityMask.FromBytes(reader.Rows, reader.Columns, reader.ReadTensor<byte>("mask", SafetensorsDType.U8, bytes));
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"GPTQ tensor '{reader.Prefix}': {e.Message}", e);
            }
        }

        try
        {
            return new GptqTensor(quantized, permutation, rotation: rotation, sparsityMask: mask);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"GPTQ tensor '{reader.Prefix}': {e.Message}", e);
        }
    }

    private static bool IsPermutation(int[] values, int count)
    {
        if (values.Length != count)
        {
            return false;
        }

        var seen = new bool[count];
        foreach (int v in values)
        {
            if ((uint)v >= (uint)count || seen[v])
            {
                return false;
            }

            seen[v] = true;
        }

        return true;
    }
}
