using Compression.Pruning.Storage;
using Compression.Tensors;
using FsCheck;
using FsCheck.Xunit;

namespace Compression.Pruning.Tests;

/// <summary>
/// FsCheck round trips of the three sparse layouts on random masks: shapes from 0 rows and single columns up, empty
/// and full rows, all-zero matrices, kept exact zeros and negative zeros. Each case checks, for the layout built from
/// the pruned matrix and from its dense form: decompression is bitwise the original, the stored positions cover the
/// kept ones, StorageBits equals the formula and the bytes the file holds, and the file reads back identical.
/// </summary>
public class SparseStorageProperties
{
    private static bool Holds(CompressedTensor layout, DenseTensor expected, SparsityMask kept, long formulaBits)
    {
        (CompressedTensor read, long partBytes) = SparseCases.RoundTrip(layout);
        return layout.Decompress().BitwiseEquals(expected)
               && read.Decompress().BitwiseEquals(expected)
               && read.Kind == layout.Kind
               && read.StorageBits == layout.StorageBits
               && layout.StorageBits == formulaBits
               && layout.StorageBits == 8 * partBytes                    // honest: every stored byte, nothing else
               && SparseCases.SameMask(read.SparsityMask!, layout.SparsityMask!)
               && SparseCases.IsSubset(kept, layout.SparsityMask!);
    }

    [Property(MaxTest = 60)]
    public bool Csr_RoundTrips(NonNegativeInt r, PositiveInt c, int seed)
    {
        int rows = r.Get % 13, columns = c.Get % 40 + 1;
        PrunedTensor pruned = SparseCases.RandomPruned(rows, columns, seed);
        DenseTensor dense = pruned.Decompress();

        CsrTensor fromPruned = CsrTensor.FromPruned(pruned);
        CsrTensor fromDense = CsrTensor.FromDense(dense);
        return Holds(fromPruned, dense, pruned.Mask, CsrTensor.ComputeStorageBits(rows, columns, pruned.Mask.KeptCount))
               && SparseCases.SameMask(fromPruned.SparsityMask, pruned.Mask)              // kept zeros stay stored
               && Holds(fromDense, dense, fromDense.SparsityMask, CsrTensor.ComputeStorageBits(rows, columns, fromDense.StoredCount))
               && fromDense.StoredCount == dense.Span.ToArray().Count(v => BitConverter.SingleToInt32Bits(v) != 0);
    }

    [Property(MaxTest = 60)]
    public bool SemiStructured_RoundTrips(NonNegativeInt r, NonNegativeInt g, PositiveInt pattern, int seed)
    {
        (int n, int m)[] patterns = [(2, 4), (1, 4), (4, 8), (1, 2), (3, 5), (2, 16)];
        (int n, int m) = patterns[pattern.Get % patterns.Length];
        int rows = r.Get % 9, groups = g.Get % 7;
        PrunedTensor pruned = SparseCases.RandomSemiStructured(rows, groups, n, m, seed);
        DenseTensor dense = pruned.Decompress();

        SemiStructuredTensor fromPruned = SemiStructuredTensor.FromPruned(pruned, n, m);
        SemiStructuredTensor fromDense = SemiStructuredTensor.FromDense(dense, n, m);
        long bits = SemiStructuredTensor.ComputeStorageBits(rows, groups * m, n, m);
        return SemiStructuredTensor.Fits(pruned.Mask, n, m)
               && Holds(fromPruned, dense, pruned.Mask, bits)
               && Holds(fromDense, dense, SparsityMask.FromNonZeros(dense), bits)
               && fromPruned.SparsityMask.KeptCount == (long)rows * groups * n           // exactly n slots per group
               && fromPruned.Kind == (n == 2 && m == 4 ? "2:4" : "n:m");
    }

    [Property(MaxTest = 60)]
    public bool Bsr_RoundTrips(NonNegativeInt r, PositiveInt c, PositiveInt shape, int seed)
    {
        (int br, int bc)[] shapes = [(1, 1), (2, 2), (4, 1), (1, 8), (3, 5), (16, 16)];
        (int blockRows, int blockColumns) = shapes[shape.Get % shapes.Length];
        int rows = r.Get % 4 * blockRows, columns = (c.Get % 4 + 1) * blockColumns;
        PrunedTensor pruned = seed % 2 == 0
            ? SparseCases.RandomPruned(rows, columns, seed)
            : SparseCases.RandomBlocks(rows / blockRows, columns / blockColumns, blockRows, blockColumns, 0.4, seed);
        DenseTensor dense = pruned.Decompress();

        BsrTensor fromPruned = BsrTensor.FromPruned(pruned, blockRows, blockColumns);
        BsrTensor fromDense = BsrTensor.FromDense(dense, blockRows, blockColumns);
        return Holds(fromPruned, dense, pruned.Mask, BsrTensor.ComputeStorageBits(rows, columns, blockRows, blockColumns, BsrTensor.CountBlocks(pruned.Mask, blockRows, blockColumns)))
               && Holds(fromDense, dense, SparsityMask.FromNonZeros(dense), BsrTensor.ComputeStorageBits(rows, columns, blockRows, blockColumns, fromDense.BlockCount))
               && fromDense.BlockCount <= fromPruned.BlockCount;                          // kept zeros may keep a block
    }

    [Property(MaxTest = 100)]
    public bool Smallest_IsTheSmallestOption_AndDecompressesToThePrunedMatrix(NonNegativeInt r, PositiveInt g, int seed)
    {
        int rows = r.Get % 5 * 4, columns = (g.Get % 5 + 1) * 4;
        PrunedTensor pruned = (seed % 3) switch
        {
            0 => SparseCases.RandomPruned(rows, columns, seed),
            1 => SparseCases.RandomSemiStructured(rows, columns / 4, 2, 4, seed),
            _ => SparseCases.RandomBlocks(rows / 4, columns / 4, 4, 4, 0.3, seed),
        };

        IReadOnlyList<SparseStorageOption> options = SparseStorage.Compare(pruned, 4, 4);
        CompressedTensor best = SparseStorage.Smallest(pruned, 4, 4);
        return best.StorageBits == options.Min(o => o.StorageBits)
               && best.Kind == options.First(o => o.StorageBits == best.StorageBits).Kind
               && best.Decompress().BitwiseEquals(pruned.Decompress());
    }
}
