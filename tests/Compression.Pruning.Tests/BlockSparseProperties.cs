using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;
using static Compression.Pruning.Tests.PruningReference;

namespace Compression.Pruning.Tests;

/// <summary>FsCheck properties of block-sparse pruning.</summary>
public class BlockSparseProperties
{
    private static (DenseTensor W, BlockSparsityOptions Options) Case(int seed, PositiveInt block, PositiveInt tiles, int sparsity, bool l2)
    {
        int br = block.Get % 5 + 1, bc = block.Get / 5 % 6 + 1;
        int rows = (tiles.Get % 7) * br, columns = (tiles.Get / 7 % 6 + 1) * bc;
        var options = new BlockSparsityOptions { BlockRows = br, BlockColumns = bc, Sparsity = Sparsity(sparsity), Norm = l2 ? PruningNorm.L2 : PruningNorm.L1 };
        return (Matrix(rows, columns, seed, ties: (seed & 1) == 0), options);
    }

    [Property(MaxTest = 300)]
    public bool Masks_AreBlockAligned_KeepTheComputedCount_AndMatchTheReference(int seed, PositiveInt block, PositiveInt tiles, int sparsity, bool l2)
    {
        (DenseTensor w, BlockSparsityOptions options) = Case(seed, block, tiles, sparsity, l2);
        PrunedTensor p = options.CreateCompressor().Prune(w);
        bool[] bits = Bits(p.Mask);
        int br = options.BlockRows, bc = options.BlockColumns, blockColumns = w.Columns / bc;
        long blocks = (long)(w.Rows / br) * blockColumns;
        // Aligned: every weight agrees with the top-left weight of its block.
        bool aligned = Enumerable.Range(0, bits.Length)
            .All(i => bits[i] == bits[i / w.Columns / br * br * w.Columns + i % w.Columns / bc * bc]);
        long keptBlocks = p.Mask.KeptCount / (br * bc);
        return aligned && keptBlocks == blocks - PrunedCount(options.Sparsity, blocks)
            && bits.SequenceEqual(Blocks(w, br, bc, options.Sparsity, options.Norm));
    }

    [Property(MaxTest = 200)]
    public bool Decompress_IsMasked_AndPruningAgainChangesNothing(int seed, PositiveInt block, PositiveInt tiles, int sparsity, bool l2)
    {
        (DenseTensor w, BlockSparsityOptions options) = Case(seed, block, tiles, sparsity, l2);
        PrunedTensor once = options.CreateCompressor().Prune(w);
        PrunedTensor twice = options.CreateCompressor().Prune(once.Decompress());
        return once.Decompress().BitwiseEquals(Masked(w, once.Mask)) && Bits(once.Mask).SequenceEqual(Bits(twice.Mask));
    }

    [Fact]
    public void L1AndL2_CanRankBlocksDifferently()
    {
        // Block 0 holds one large weight (L1 3, L2 3), block 1 four moderate ones (L1 4, L2 2).
        DenseTensor w = DenseTensor.FromValues([3, 0, 1, 1, 0, 0, 1, 1], 2, 4);
        var options = new BlockSparsityOptions { BlockRows = 2, BlockColumns = 2, Sparsity = 0.5 };
        Assert.False(options.CreateCompressor().Prune(w).Mask.IsKept(0, 2));                                     // L2 prunes block 1
        Assert.False((options with { Norm = PruningNorm.L1 }).CreateCompressor().Prune(w).Mask.IsKept(0, 0));   // L1 prunes block 0
    }

    [Fact]
    public void FreshLargeInput_MatchesTheReference()
    {
        DenseTensor w = RandomData.GaussianMatrix(128, 256, seed: 8);
        var options = new BlockSparsityOptions { BlockRows = 8, BlockColumns = 16, Sparsity = 0.6 };
        Assert.Equal(Blocks(w, 8, 16, 0.6, PruningNorm.L2), Bits(options.CreateCompressor().Prune(w).Mask));
    }
}
