// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Globalization;
using System.IO;
using System.Numerics;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Pruning.Storage;

/// <summary>
/// A matrix with at most N non-zeros in every group of M consecutive columns of a row (N:M semi-structured
/// sparsity, 2:4 on NVIDIA sparse tensor cores) in the compressed layout those cores use: exactly N values per group,
/// [Rows, Columns·N/M], and for each value its position inside its group in ⌈log₂ M⌉ bits (2 bits for 2:4).
/// </summary>
/// <remarks>
/// <para>A group with fewer than N kept weights is padded with explicit zeros at its first free positions, so every
/// group holds exactly N slots and their positions increase within the group (the hardware's rule). Columns must be
/// a multiple of M.</para>
/// <para>Storage, every byte counted by <see cref="CompressedTensor.StorageBits"/>: <c>values</c> float32 ×
/// Rows·Columns·N/M and <c>indices</c>, a bit stream of ⌈log₂ M⌉ bits per value in row-major value order,
/// little-endian inside each byte (value k of the matrix at bits [k·b, k·b + b)), ⌈Rows·Columns·N/M·b/8⌉ bytes. For
/// 2:4 that is 16 + 1 = 17 bits per weight, whatever the values. The bit order is plain row-major, not the interleaved
/// metadata order cuSPARSELt feeds the tensor cores; the information is the same and reordering it is a fixed
/// permutation done when uploading.</para>
/// <para>Serialized as kind "2:4" for N = 2, M = 4 and "n:m" otherwise (attributes <c>n</c> and <c>m</c> are written
/// in both cases). <see cref="SparsityMask"/> is the stored slots: the kept weights plus any padding zeros (a mask that
/// already has exactly N per group, as N:M pruners produce, comes back unchanged). Decompression writes +0 everywhere
/// else and the stored values bit for bit.</para>
/// <para>Mishra et al., "Accelerating Sparse Deep Neural Networks" (2021) describe the 2:4 format and its hardware.</para>
/// </remarks>
public sealed partial class SemiStructuredTensor : CompressedTensor, ITunableTensor
{
    internal const string TwoFourKindName = "2:4";
    internal const string GeneralKindName = "n:m";

    /// <summary>The largest group size supported (indices of at most 8 bits).</summary>
    public const int MaxGroupSize = 256;

    private readonly float[] _values;
    private readonly byte[] _indices;
    private SparsityMask? _mask;

    private SemiStructuredTensor(int rows, int columns, int n, int m, float[] values, byte[] indices)
        : base(rows, columns)
    {
        N = n;
        M = m;
        IndexBits = BitsFor(m);
        ValuesPerRow = columns / m * n;
        _values = values;
        _indices = indices;
    }

    /// <summary>Values kept per group (2 for 2:4).</summary>
    public int N { get; }

    /// <summary>Columns per group (4 for 2:4).</summary>
    public int M { get; }

    /// <summary>Bits per in-group index: ⌈log₂ M⌉.</summary>
    public int IndexBits { get; }

    /// <summary>Columns·N/M: the row length of <see cref="Values"/>.</summary>
    public int ValuesPerRow { get; }

    /// <summary>The stored values, [Rows, <see cref="ValuesPerRow"/>] row-major; value k of a row lies in group k / N.</summary>
    public ReadOnlyMemory<float> Values => _values;

    /// <summary>The packed in-group indices (see the remarks for the bit order).</summary>
    public ReadOnlyMemory<byte> Indices => _indices;

    /// <inheritdoc/>
    public override string Kind => N == 2 && M == 4 ? TwoFourKindName : GeneralKindName;

    /// <inheritdoc/>
    public override long StorageBits => ComputeStorageBits(Rows, Columns, N, M);

    /// <summary>The stored slots: kept weights and padding zeros.</summary>
    public override SparsityMask SparsityMask => _mask ??= BuildMask();

    internal float[] ValueArray => _values;

    internal byte[] IndexArray => _indices;

    /// <summary>StorageBits of an N:M matrix of this shape (the layout's size does not depend on the values).</summary>
    /// <exception cref="ArgumentException"><paramref name="columns"/> is not a multiple of <paramref name="m"/>.</exception>
    public static long ComputeStorageBits(int rows, int columns, int n = 2, int m = 4)
    {
        CheckPattern(n, m);
        CheckColumns(columns, m, nameof(columns));
        long slots = (long)rows * (columns / m) * n;
        return 32 * slots + 8 * ((slots * BitsFor(m) + 7) / 8);
    }

    /// <summary>Whether <paramref name="mask"/> fits the N:M layout: Columns a multiple of M and at most N kept weights in every group.</summary>
    public static bool Fits(SparsityMask mask, int n = 2, int m = 4)
    {
        ArgumentNullException.ThrowIfNull(mask);
        CheckPattern(n, m);
        return mask.Columns % m == 0 && FirstViolation(mask.ToBytes(), mask.Rows, mask.Columns, n, m) is null;
    }

    /// <summary>Stores the weights <paramref name="pruned"/> keeps (exact zeros included), padding groups with fewer than N.</summary>
    /// <exception cref="ArgumentException">Columns is not a multiple of M, or a group keeps more than N weights.</exception>
    /// <exception cref="ArgumentOutOfRangeException">N is outside [1, M] or M outside [2, 256].</exception>
    public static SemiStructuredTensor FromPruned(PrunedTensor pruned, int n = 2, int m = 4)
    {
        ArgumentNullException.ThrowIfNull(pruned);
        CheckPattern(n, m);
        CheckColumns(pruned.Columns, m, nameof(pruned));
        SemiStructuredTensor result = Build(pruned.Rows, pruned.Columns, n, m, pruned.Mask.ToBytes(), pruned.Values.Span, compactValues: true, nameof(pruned));
        if (pruned.Mask.KeptCount == (long)result.Rows * result.ValuesPerRow)
        {
            result._mask = pruned.Mask;          // no padding: the slots are the kept weights
        }

        return result;
    }

    /// <summary>
    /// Stores the elements of <paramref name="matrix"/> whose bits are not those of +0 (−0 and NaN count as
    /// non-zero, so the round trip is bitwise), padding groups with fewer than N.
    /// </summary>
    /// <exception cref="ArgumentException">Not a matrix, Columns is not a multiple of M, or a group holds more than N non-zeros.</exception>
    /// <exception cref="ArgumentOutOfRangeException">N is outside [1, M] or M outside [2, 256].</exception>
    public static SemiStructuredTensor FromDense(DenseTensor matrix, int n = 2, int m = 4)
    {
        MaskBits.CheckMatrix(matrix, nameof(matrix));
        CheckPattern(n, m);
        CheckColumns(matrix.Columns, m, nameof(matrix));
        return Build(matrix.Rows, matrix.Columns, n, m, MaskBits.NonZero(matrix), matrix.Span, compactValues: false, nameof(matrix));
    }

    /// <summary>A serializer that also reads N:M tensors (kinds "2:4" and "n:m").</summary>
    public static CompressedTensorSerializer Register(CompressedTensorSerializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        return serializer.WithKind(TwoFourKindName, Read).WithKind(GeneralKindName, Read);
    }

    /// <summary>The in-group index of value <paramref name="slot"/> of <paramref name="row"/>.</summary>
    internal int GetIndex(int row, int slot) => ReadBits(_indices, ((long)row * ValuesPerRow + slot) * IndexBits, IndexBits);

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination)
    {
        destination.Clear();
        for (int r = 0; r < Rows; r++)
        {
            for (int k = 0; k < ValuesPerRow; k++)
            {
                destination[r * Columns + k / N * M + GetIndex(r, k)] = _values[r * ValuesPerRow + k];
            }
        }
    }

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteAttribute("n", N);
        writer.WriteAttribute("m", M);
        writer.WriteTensor<float>("values", SafetensorsDType.F32, [Rows, ValuesPerRow], _values);
        writer.WriteTensor<byte>("indices", SafetensorsDType.U8, [_indices.Length], _indices);
    }

    internal static int BitsFor(int m) => 32 - BitOperations.LeadingZeroCount((uint)(m - 1));

    internal static int ReadBits(byte[] bytes, long position, int width)
    {
        long at = position >> 3;
        int word = bytes[at] | (at + 1 < bytes.Length ? bytes[at + 1] << 8 : 0);
        return (word >> (int)(position & 7)) & ((1 << width) - 1);
    }

    private static void WriteBits(byte[] bytes, long position, int width, int value)
    {
        long at = position >> 3;
        int word = value << (int)(position & 7);
        bytes[at] |= (byte)word;
        if ((word >> 8) != 0)
        {
            bytes[at + 1] |= (byte)(word >> 8);
        }
    }

    private static void CheckPattern(int n, int m)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(m, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(m, MaxGroupSize);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, m);
    }

    private static void CheckColumns(int columns, int m, string name)
    {
        if (columns % m != 0)
        {
            throw new ArgumentException($"The matrix has {columns} columns; groups of {m} must divide them (pad the matrix with zero columns).", name);
        }
    }

    private static (int Row, int Group, int Kept)? FirstViolation(byte[] bits, int rows, int columns, int n, int m)
    {
        long flat = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < columns / m; g++)
            {
                int kept = 0;
                for (int c = 0; c < m; c++, flat++)
                {
                    kept += MaskBits.IsSet(bits, flat) ? 1 : 0;
                }

                if (kept > n)
                {
                    return (r, g, kept);
                }
            }
        }

        return null;
    }

    private static SemiStructuredTensor Build(int rows, int columns, int n, int m, byte[] bits, ReadOnlySpan<float> source, bool compactValues, string name)
    {
        if (FirstViolation(bits, rows, columns, n, m) is var (row, group, kept))
        {
            throw new ArgumentException(
                $"Row {row}, columns {group * m}–{group * m + m - 1} hold {kept} non-zero weights; the {n}:{m} layout stores at most {n} per group of {m}.",
                name);
        }

        int width = BitsFor(m);
        long slots = (long)rows * (columns / m) * n;
        var values = new float[slots];
        var indices = new byte[(slots * width + 7) / 8];
        long slot = 0, flat = 0, sourceIndex = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < columns / m; g++, flat += m)
            {
                int keptHere = 0;
                for (int c = 0; c < m; c++)
                {
                    keptHere += MaskBits.IsSet(bits, flat + c) ? 1 : 0;
                }

                // Kept positions plus the first free ones as padding, in increasing order: exactly n slots.
                int padding = n - keptHere;
                for (int c = 0; c < m; c++)
                {
                    bool isKept = MaskBits.IsSet(bits, flat + c);
                    if (!isKept && padding == 0)
                    {
                        continue;
                    }

                    if (isKept)
                    {
                        values[slot] = compactValues ? source[(int)sourceIndex++] : source[(int)(flat + c)];
                    }
                    else
                    {
                        padding--;          // an explicit +0
                    }

                    WriteBits(indices, slot * width, width, c);
                    slot++;
                }
            }
        }

        return new SemiStructuredTensor(rows, columns, n, m, values, indices);
    }

    private SparsityMask BuildMask()
    {
        byte[] bits = MaskBits.Allocate(Rows, Columns);
        for (int r = 0; r < Rows; r++)
        {
            for (int k = 0; k < ValuesPerRow; k++)
            {
                MaskBits.Set(bits, (long)r * Columns + k / N * M + GetIndex(r, k));
            }
        }

        return SparsityMask.FromBytes(Rows, Columns, bits);
    }

    private static SemiStructuredTensor Read(CompressedTensorReader reader)
    {
        long n = reader.ReadInt64Attribute("n"), m = reader.ReadInt64Attribute("m");
        if (m is < 2 or > MaxGroupSize || n < 1 || n > m || reader.Columns % m != 0)
        {
            throw new InvalidDataException($"'{reader.Prefix}' is a {n}:{m} tensor of {reader.Columns} columns; 1 ≤ n ≤ m ≤ {MaxGroupSize}, m ≥ 2 and m dividing the columns are required.");
        }

        string kind = reader.ReadAttribute("kind");
        if ((kind == TwoFourKindName) != (n == 2 && m == 4))
        {
            throw new InvalidDataException($"'{reader.Prefix}' is of kind '{kind}' but records n = {n}, m = {m}.");
        }

        int width = BitsFor((int)m);
        long perRow = reader.Columns / m * n, slots = reader.Rows * perRow;
        float[] values = reader.ReadTensor<float>("values", SafetensorsDType.F32, reader.Rows, perRow);
        byte[] indices = reader.ReadTensor<byte>("indices", SafetensorsDType.U8, (slots * width + 7) / 8);
        var result = new SemiStructuredTensor(reader.Rows, reader.Columns, (int)n, (int)m, values, indices);
        for (int r = 0; r < result.Rows; r++)
        {
            int previous = -1;
            for (int k = 0; k < result.ValuesPerRow; k++)
            {
                previous = k % n == 0 ? -1 : previous;
                int index = result.GetIndex(r, k);
                if (index <= previous || index >= m)
                {
                    throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                        $"'{reader.Prefix}': row {r}, value {k} has in-group index {index} after {previous}; indices must increase strictly within [0, {m})."));
                }

                previous = index;
            }
        }

        long usedBits = slots * width;
        if (usedBits % 8 != 0 && (indices[^1] >> (int)(usedBits % 8)) != 0)
        {
            throw new InvalidDataException($"'{reader.Prefix}': the index stream has bits set past its last index.");
        }

        return result;
    }
}
