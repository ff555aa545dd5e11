// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using Compression.Composition;

namespace Compression.Pruning.Storage;

/// <summary>
/// Chooses how to store a pruned matrix: the bitmask (<see cref="PrunedTensor"/> itself), CSR, 2:4, BSR or plain
/// float32, whichever has the fewest <see cref="CompressedTensor.StorageBits"/>.
/// </summary>
/// <remarks>
/// <para>Bits per weight at density d (the fraction kept), ignoring the per-row pointers (32 bits per row, or per
/// block row):</para>
/// <list type="table">
/// <listheader><term>layout</term><description>bits per weight</description></listheader>
/// <item><term>dense float32</term><description>32</description></item>
/// <item><term>bitmask</term><description>1 + 32d</description></item>
/// <item><term>CSR, uint16 columns (Columns ≤ 65 536)</term><description>48d</description></item>
/// <item><term>CSR, int32 columns</term><description>64d</description></item>
/// <item><term>2:4</term><description>17 (two float32 values and two 2-bit indices per four weights)</description></item>
/// <item><term>BSR r×c, block density d_b</term><description>32·d_b + 16·d_b/(r·c)</description></item>
/// </list>
/// <para>Crossovers: CSR (uint16) beats dense below d = 2/3 and the bitmask below d = 1/16 (6.25%); with int32 columns
/// these are 1/2 and 1/32. The bitmask beats dense below d = 31/32. 2:4 ties the bitmask at d = 1/2 (both 17 bits) and
/// loses to it when groups keep fewer than two weights. BSR costs what dense costs on its stored blocks: it wins when
/// the pruning was block-structured (16×16 blocks at block density d_b beat CSR when each stored block is more than
/// 2/3 full). On equal sizes the order of preference is 2:4, BSR, CSR, bitmask, dense (the layouts with faster kernels
/// first).</para>
/// </remarks>
public static class SparseStorage
{
    private const string DenseKind = "dense";

    /// <summary>Every applicable layout and its exact StorageBits, in order of preference on ties (2:4, BSR, CSR, bitmask, dense).</summary>
    /// <param name="pruned">The pruned matrix.</param>
    /// <param name="blockRows">Rows of a BSR block; BSR is left out when it does not divide the matrix.</param>
    /// <param name="blockColumns">Columns of a BSR block.</param>
    /// <exception cref="ArgumentOutOfRangeException">A block dimension is not positive.</exception>
    public static IReadOnlyList<SparseStorageOption> Compare(PrunedTensor pruned, int blockRows = 16, int blockColumns = 16)
    {
        ArgumentNullException.ThrowIfNull(pruned);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockRows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockColumns);
        SparsityMask mask = pruned.Mask;
        var options = new List<SparseStorageOption>(5);
        if (SemiStructuredTensor.Fits(mask, 2, 4))
        {
            options.Add(new SparseStorageOption(SemiStructuredTensor.TwoFourKindName, SemiStructuredTensor.ComputeStorageBits(pruned.Rows, pruned.Columns, 2, 4)));
        }

        if (pruned.Rows % blockRows == 0 && pruned.Columns % blockColumns == 0)
        {
            long blocks = BsrTensor.CountBlocks(mask, blockRows, blockColumns);
            options.Add(new SparseStorageOption(BsrTensor.KindName, BsrTensor.ComputeStorageBits(pruned.Rows, pruned.Columns, blockRows, blockColumns, blocks)));
        }

        options.Add(new SparseStorageOption(CsrTensor.KindName, CsrTensor.ComputeStorageBits(pruned.Rows, pruned.Columns, mask.KeptCount)));
        options.Add(new SparseStorageOption(PrunedTensor.KindName, pruned.StorageBits));
        options.Add(new SparseStorageOption(DenseKind, 32 * pruned.ElementCount));
        return options;
    }

    /// <summary>
    /// The smallest honest representation of <paramref name="pruned"/> (see the remarks for the crossovers). It
    /// decompresses to exactly <c>pruned.Decompress()</c>; its <see cref="CompressedTensor.SparsityMask"/> may hold
    /// more positions than the pruner's mask (2:4 padding, whole BSR blocks) or be null (dense).
    /// </summary>
    /// <param name="pruned">The pruned matrix; returned itself when the bitmask is smallest.</param>
    /// <param name="blockRows">Rows of a BSR block; BSR is skipped when it does not divide the matrix.</param>
    /// <param name="blockColumns">Columns of a BSR block.</param>
    /// <exception cref="ArgumentOutOfRangeException">A block dimension is not positive.</exception>
    public static CompressedTensor Smallest(PrunedTensor pruned, int blockRows = 16, int blockColumns = 16)
    {
        IReadOnlyList<SparseStorageOption> options = Compare(pruned, blockRows, blockColumns);
        SparseStorageOption best = options[0];
        foreach (SparseStorageOption option in options)
        {
            if (option.StorageBits < best.StorageBits)
            {
                best = option;
            }
        }

        return best.Kind switch
        {
            SemiStructuredTensor.TwoFourKindName => SemiStructuredTensor.FromPruned(pruned, 2, 4),
            BsrTensor.KindName => BsrTensor.FromPruned(pruned, blockRows, blockColumns),
            CsrTensor.KindName => CsrTensor.FromPruned(pruned),
            PrunedTensor.KindName => pruned,
            _ => new UncompressedTensor(pruned.Decompress()),
        };
    }
}
