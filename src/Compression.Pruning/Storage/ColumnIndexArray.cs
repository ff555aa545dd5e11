// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;
using Compression.Safetensors;
using Compression.Serialization;

namespace Compression.Pruning.Storage;

/// <summary>
/// Column indices of a sparse layout (CSR columns, BSR block columns), stored as uint16 when every index fits
/// (at most 65 536 columns) and as int32 otherwise: the narrow form saves 16 bits per stored element, a third of CSR's
/// 48 bits per non-zero.
/// </summary>
internal readonly struct ColumnIndexArray
{
    /// <summary>The largest column count whose indices fit in 16 bits (0 … 65 535).</summary>
    public const int NarrowLimit = 1 << 16;

    private ColumnIndexArray(ushort[]? narrow, int[]? wide)
    {
        Narrow = narrow;
        Wide = wide;
    }

    /// <summary>The indices when narrow, otherwise null.</summary>
    public ushort[]? Narrow { get; }

    /// <summary>The indices when wide, otherwise null.</summary>
    public int[]? Wide { get; }

    /// <summary>16 or 32.</summary>
    public int Bits => Narrow is not null ? 16 : 32;

    public int Length => Narrow?.Length ?? Wide!.Length;

    public int this[int index] => Narrow is not null ? Narrow[index] : Wide![index];

    /// <summary>Bits per index for <paramref name="columns"/> columns.</summary>
    public static int BitsFor(int columns) => columns <= NarrowLimit ? 16 : 32;

    public static ColumnIndexArray Allocate(int count, int columns) =>
        columns <= NarrowLimit ? new ColumnIndexArray(new ushort[count], null) : new ColumnIndexArray(null, new int[count]);

    public void Set(int index, int column)
    {
        if (Narrow is not null)
        {
            Narrow[index] = (ushort)column;
        }
        else
        {
            Wide![index] = column;
        }
    }

    /// <summary>The indices widened to int32 (a copy).</summary>
    public int[] ToInt32()
    {
        if (Wide is not null)
        {
            return (int[])Wide.Clone();
        }

        var result = new int[Narrow!.Length];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = Narrow[i];
        }

        return result;
    }

    public void Write(CompressedTensorWriter writer, string part)
    {
        if (Narrow is not null)
        {
            writer.WriteTensor<ushort>(part, SafetensorsDType.U16, [Narrow.Length], Narrow);
        }
        else
        {
            writer.WriteTensor<int>(part, SafetensorsDType.I32, [Wide!.Length], Wide);
        }
    }

    /// <summary>Reads <paramref name="count"/> indices in the width <paramref name="columns"/> implies.</summary>
    public static ColumnIndexArray Read(CompressedTensorReader reader, string part, long count, int columns) =>
        columns <= NarrowLimit
            ? new ColumnIndexArray(reader.ReadTensor<ushort>(part, SafetensorsDType.U16, count), null)
            : new ColumnIndexArray(null, reader.ReadTensor<int>(part, SafetensorsDType.I32, count));

    /// <summary>
    /// Checks a compressed-row structure read from a file: pointers start at 0, never decrease and end at the index
    /// count; within a row the indices increase strictly and stay below <paramref name="columns"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">Any of these fails.</exception>
    public void Validate(string prefix, int[] pointers, int columns)
    {
        if (pointers[0] != 0 || pointers[^1] != Length)
        {
            throw new InvalidDataException($"'{prefix}': row pointers run from {pointers[0]} to {pointers[^1]}; 0 to {Length} expected.");
        }

        for (int r = 0; r + 1 < pointers.Length; r++)
        {
            if (pointers[r + 1] < pointers[r])
            {
                throw new InvalidDataException($"'{prefix}': row pointer {r + 1} ({pointers[r + 1]}) is below the one before ({pointers[r]}).");
            }
        }

        for (int r = 0; r + 1 < pointers.Length; r++)
        {
            int previous = -1;
            for (int k = pointers[r]; k < pointers[r + 1]; k++)
            {
                int column = this[k];
                if (column <= previous || column >= columns)
                {
                    throw new InvalidDataException(
                        $"'{prefix}': row {r} holds column index {column} after {previous}; indices must increase strictly within [0, {columns}).");
                }

                previous = column;
            }
        }
    }

    /// <summary>Reads row pointers: int32 as written here, or int64 as other tools write them (checked to fit).</summary>
    public static int[] ReadPointers(CompressedTensorReader reader, string part, long count)
    {
        try
        {
            return reader.ReadTensor<int>(part, SafetensorsDType.I32, count);
        }
        catch (InvalidDataException first) when (reader.Contains(part))
        {
            long[] wide;
            try
            {
                wide = reader.ReadTensor<long>(part, SafetensorsDType.I64, count);
            }
            catch (InvalidDataException)
            {
                throw first;            // neither width fits: the int32 complaint names what this library writes
            }

            var narrow = new int[wide.Length];
            for (int i = 0; i < wide.Length; i++)
            {
                if (wide[i] is < 0 or > int.MaxValue)
                {
                    throw new InvalidDataException($"'{reader.Prefix}.{part}' holds pointer {wide[i]}, outside [0, {int.MaxValue}].");
                }

                narrow[i] = (int)wide[i];
            }

            return narrow;
        }
    }
}
