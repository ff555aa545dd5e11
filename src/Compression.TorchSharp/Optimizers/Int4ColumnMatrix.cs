// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Optimizers;

/// <summary>
/// A d×r matrix stored as symmetric INT4 codes, two to a byte, with one float32 scale per group of
/// <see cref="GroupSize"/> consecutive elements of a column: x ≈ code·s with code ∈ [−7, 7] and s = max|x|/7 over the
/// group, so every element dequantizes within s/2 of its value. Q-GaLore's storage for projection matrices.
/// </summary>
/// <remarks>−8 is left unused so that the grid is symmetric: a singular vector and its negation (SVD's sign is
/// arbitrary) quantize to exactly negated codes.</remarks>
internal sealed class Int4ColumnMatrix : IDisposable
{
    private const int MaxCode = 7;

    private Int4ColumnMatrix(Tensor packed, Tensor scales, long rows, long columns, long groupSize)
    {
        (Packed, Scales, Rows, Columns, GroupSize) = (packed, scales, rows, columns, groupSize);
    }

    /// <summary>Codes + 8 (0…15), element 2k in the low nibble of byte k and 2k + 1 in its high nibble, in the order of
    /// the transposed, group-padded matrix [r, groups·g].</summary>
    public Tensor Packed { get; private set; }

    /// <summary>Scales [r, groups], float32.</summary>
    public Tensor Scales { get; private set; }

    /// <summary>d, the length of a column.</summary>
    public long Rows { get; }

    /// <summary>r.</summary>
    public long Columns { get; }

    /// <summary>Elements per scale, along a column.</summary>
    public long GroupSize { get; }

    /// <summary>Bytes held: packed codes and scales.</summary>
    public long Bytes => Packed.NumberOfElements * Packed.ElementSize + Scales.NumberOfElements * Scales.ElementSize;

    /// <summary>The bytes <see cref="Quantize"/> allocates for a d×r matrix: ⌈r·⌈d/g⌉·g / 2⌉ code bytes and
    /// r·⌈d/g⌉ float32 scales.</summary>
    public static long StorageBytes(long rows, long columns, long groupSize)
    {
        long g = groupSize == 0 ? rows : Math.Min(groupSize, rows);
        long groups = (rows + g - 1) / g;
        return (columns * groups * g + 1) / 2 + 4 * columns * groups;
    }

    /// <summary>Quantizes a d×r matrix; <paramref name="groupSize"/> 0 means one scale per column.</summary>
    public static Int4ColumnMatrix Quantize(Tensor matrix, long groupSize)
    {
        using var scope = NewDisposeScope();
        long rows = matrix.shape[0], columns = matrix.shape[1];
        long g = groupSize == 0 ? rows : Math.Min(groupSize, rows);
        long groups = (rows + g - 1) / g;
        Tensor byColumn = matrix.detach().to(ScalarType.Float32).t().contiguous();
        if (groups * g != rows)
        {
            byColumn = nn.functional.pad(byColumn, [0, groups * g - rows]);
        }

        Tensor grouped = byColumn.view(columns, groups, g);
        Tensor scales = grouped.abs().amax([2], keepdim: true).div_(MaxCode);
        // An all-zero group keeps scale 0 and codes 0; dividing by 1 there avoids 0/0.
        Tensor safe = torch.where(scales > 0, scales, torch.ones_like(scales));
        Tensor codes = grouped.div(safe).round_().clamp_(-MaxCode, MaxCode).to(ScalarType.Int32).add_(8).flatten();
        if (codes.shape[0] % 2 == 1)
        {
            codes = torch.cat([codes, torch.full(1, 8, ScalarType.Int32)]);
        }

        Tensor pairs = codes.view(-1, 2);
        Tensor packed = pairs[.., 0].add(pairs[.., 1].mul(16)).to(ScalarType.Byte);
        // Long-lived storage: out of every dispose scope (optimizer steps run inside one).
        return new Int4ColumnMatrix(packed.contiguous().DetachFromDisposeScope(), scales.view(columns, groups).contiguous().DetachFromDisposeScope(),
            rows, columns, g);
    }

    /// <summary>The dequantized d×r matrix in <paramref name="dtype"/>.</summary>
    public Tensor Dequantize(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        Tensor bytes = Packed.to(ScalarType.Int32);
        Tensor high = bytes.div(16, RoundingMode.floor);
        Tensor low = bytes.sub(high.mul(16));
        long groups = Scales.shape[1];
        Tensor codes = torch.stack([low, high], 1).flatten().narrow(0, 0, Columns * groups * GroupSize).sub_(8).to(ScalarType.Float32);
        Tensor values = codes.view(Columns, groups, GroupSize).mul_(Scales.unsqueeze(2)).view(Columns, groups * GroupSize).narrow(1, 0, Rows);
        return values.t().contiguous().to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Writes the codes and scales.</summary>
    public void Save(BinaryWriter writer)
    {
        writer.Write(Rows);
        writer.Write(Columns);
        writer.Write(GroupSize);
        Packed.Save(writer);
        Scales.Save(writer);
    }

    /// <summary>Reads what <see cref="Save"/> wrote.</summary>
    public static Int4ColumnMatrix Load(BinaryReader reader)
    {
        long rows = reader.ReadInt64(), columns = reader.ReadInt64(), groupSize = reader.ReadInt64();
        long groups = (rows + groupSize - 1) / groupSize;
        Tensor packed = torch.zeros((columns * groups * groupSize + 1) / 2, ScalarType.Byte).DetachFromDisposeScope();
        Tensor scales = torch.zeros([columns, groups], ScalarType.Float32).DetachFromDisposeScope();
        packed.Load(reader);
        scales.Load(reader);
        return new Int4ColumnMatrix(packed, scales, rows, columns, groupSize);
    }

    /// <summary>Moves the storage to <paramref name="device"/>.</summary>
    public void To(Device device)
    {
        Packed = Packed.to(device, disposeAfter: true).DetachFromDisposeScope();
        Scales = Scales.to(device, disposeAfter: true).DetachFromDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Packed.Dispose();
        Scales.Dispose();
    }
}
