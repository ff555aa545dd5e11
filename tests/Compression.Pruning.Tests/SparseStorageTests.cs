using Compression.Pruning.Storage;
using Compression.Safetensors;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Pruning.Tests;

/// <summary>Known layouts on small examples, the size formulas, and the inputs each layout refuses.</summary>
public class SparseStorageTests
{
    private static PrunedTensor Prune(DenseTensor w) => new(w, SparsityMask.FromNonZeros(w));

    [Fact]
    public void Csr_OfAKnownMatrix_HasTheTextbookArrays()
    {
        // 3×5 with an empty middle row.
        DenseTensor w = DenseTensor.FromValues([0, 1.5f, 0, 0, -2, 0, 0, 0, 0, 0, 3, 0, 0, 4, 5], 3, 5);
        CsrTensor csr = CsrTensor.FromDense(w);

        Assert.Equal([0, 2, 2, 5], csr.RowPointers.ToArray());
        Assert.Equal(16, csr.ColumnIndexBits);
        Assert.Equal([(ushort)1, 4, 0, 3, 4], csr.ColumnIndicesUInt16.ToArray());
        Assert.True(csr.ColumnIndicesInt32.IsEmpty);
        Assert.Equal([0, 3], csr.GetColumnIndices()[2..4]);
        Assert.Equal([1.5f, -2, 3, 4, 5], csr.Values.ToArray());
        Assert.Equal(5, csr.StoredCount);
        // 4 int32 row pointers + 5 × (uint16 column + float32 value).
        Assert.Equal(4 * 32 + 5 * (16 + 32), csr.StorageBits);
        Assert.Equal("csr", csr.Kind);
        Assert.True(csr.Decompress().BitwiseEquals(w));
    }

    [Fact]
    public void Csr_FromDense_StoresNegativeZero_FromPruned_StoresKeptZeros()
    {
        DenseTensor w = DenseTensor.FromValues([-0f, 0f, 2f, 0f], 2, 2);
        CsrTensor dense = CsrTensor.FromDense(w);
        Assert.Equal(2, dense.StoredCount);                                   // −0 and 2: +0 is the only zero dropped
        Assert.True(dense.Decompress().BitwiseEquals(w));

        SparsityMask keepAll = SparsityMask.FromPredicate(2, 2, 0, static (_, _) => true);
        CsrTensor pruned = CsrTensor.FromPruned(new PrunedTensor(w, keepAll));
        Assert.Equal(4, pruned.StoredCount);
        Assert.Equal(4, pruned.SparsityMask.KeptCount);
    }

    [Fact]
    public void Csr_WideMatrices_UseInt32Columns()
    {
        // 65 536 columns still fit uint16 (indices 0 … 65 535); one more needs int32.
        foreach ((int columns, int bits) in new[] { (65536, 16), (65537, 32) })
        {
            var w = new DenseTensor(2, columns);
            w[0, columns - 1] = 1;
            w[1, 0] = 2;
            CsrTensor csr = CsrTensor.FromDense(w);
            Assert.Equal(bits, csr.ColumnIndexBits);
            Assert.Equal(3 * 32 + 2 * (bits + 32), csr.StorageBits);
            Assert.Equal([columns - 1, 0], csr.GetColumnIndices());
            (CompressedTensor read, long bytes) = SparseCases.RoundTrip(csr);
            Assert.True(read.Decompress().BitwiseEquals(w));
            Assert.Equal(csr.StorageBits, 8 * bytes);
        }
    }

    [Fact]
    public void TwoFour_OfAKnownMatrix_PacksTwoBitIndices()
    {
        // Row 0: groups {1.5 at 1, 2 at 3} and {one value at 2 → padded with a zero at 0}.
        DenseTensor w = DenseTensor.FromValues([0, 1.5f, 0, 2, 0, 0, 7, 0], 1, 8);
        SemiStructuredTensor t = SemiStructuredTensor.FromDense(w);
        Assert.Equal("2:4", t.Kind);
        Assert.Equal(2, t.IndexBits);
        Assert.Equal(4, t.ValuesPerRow);
        Assert.Equal([1.5f, 2, 0, 7], t.Values.ToArray());
        // Indices 1, 3, 0, 2 at bits 0, 2, 4, 6 of one byte: 0b10_00_11_01.
        Assert.Equal([(byte)0b10_00_11_01], t.Indices.ToArray());
        Assert.Equal(4 * 32 + 8, t.StorageBits);
        Assert.True(t.Decompress().BitwiseEquals(w));
        Assert.Equal(4, t.SparsityMask.KeptCount);                            // the padding zero is a stored slot
    }

    [Fact]
    public void StorageBits_Formulas()
    {
        // 2:4 is 17 bits per weight whatever the values: 16 for half the weights in float32, 1 for 2-bit indices.
        Assert.Equal(17L * 64 * 64, SemiStructuredTensor.ComputeStorageBits(64, 64));
        // 1:8 over 3 × 16: 6 values of 32 bits and 6 indices of 3 bits = 18 bits → 3 bytes.
        Assert.Equal(6 * 32 + 3 * 8, SemiStructuredTensor.ComputeStorageBits(3, 16, 1, 8));
        // BSR 32×48 in 16×16 blocks, 2 stored: 3 block-row pointers, 2 uint16 indices, 2 blocks of 256 floats.
        Assert.Equal(3 * 32 + 2 * 16 + 2 * 256 * 32, BsrTensor.ComputeStorageBits(32, 48, 16, 16, 2));
        Assert.Equal(4097L * 32 + 48L * 1000, CsrTensor.ComputeStorageBits(4096, 4096, 1000));
        Assert.Equal(4097L * 32 + 64L * 1000, CsrTensor.ComputeStorageBits(4096, 70000, 1000));
    }

    [Fact]
    public void Bsr_OfAKnownMatrix_StoresTheNonZeroBlocks()
    {
        DenseTensor w = DenseTensor.FromValues(
        [
            1, 2, 0, 0, 0, 0,
            3, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 4,
            0, 0, 0, 0, 0, 0,
        ], 4, 6);
        BsrTensor bsr = BsrTensor.FromDense(w, 2, 2);
        Assert.Equal([0, 1, 2], bsr.BlockRowPointers.ToArray());
        Assert.Equal([0, 2], bsr.GetBlockColumnIndices());
        Assert.Equal([1f, 2, 3, 0, 0, 4, 0, 0], bsr.Values.ToArray());
        Assert.Equal(3 * 32 + 2 * 16 + 8 * 32, bsr.StorageBits);
        Assert.Equal(8, bsr.SparsityMask.KeptCount);
        Assert.True(bsr.Decompress().BitwiseEquals(w));
    }

    [Fact]
    public void Smallest_FollowsTheDocumentedCrossovers()
    {
        // 64×64 at 20% density, unstructured: the bitmask (1 + 32·0.2 = 7.4 bits/weight) beats CSR (48·0.2 + 0.5 for
        // the row pointers = 10.1).
        PrunedTensor twenty = Density(64, 64, 0.2, seed: 1);
        Assert.Equal("pruned", SparseStorage.Smallest(twenty).Kind);
        // 1% density, below the 1/16 crossover: CSR (0.48 + 0.5 bits) beats the bitmask (1.32).
        Assert.Equal("csr", SparseStorage.Smallest(Density(64, 64, 0.01, seed: 2)).Kind);
        // Everything kept: dense float32 (32 bits) beats the bitmask (33).
        Assert.Equal("dense", SparseStorage.Smallest(Density(64, 64, 1.0, seed: 3)).Kind);
        // Exact 2:4: 17 bits, tied with the bitmask; 2:4 is preferred.
        PrunedTensor twoFour = SparseCases.RandomSemiStructured(8, 16, 2, 4, seed: 4);
        twoFour = new PrunedTensor(twoFour.Decompress(), SparsityMask.FromPredicate(8, 64, 0, static (_, i) => i % 4 < 2));
        Assert.Equal("2:4", SparseStorage.Smallest(twoFour).Kind);
        // Whole 16×16 blocks at 30%: BSR.
        Assert.Equal("bsr", SparseStorage.Smallest(SparseCases.RandomBlocks(4, 4, 16, 16, 0.3, seed: 5)).Kind);
        // A block shape that does not divide the matrix leaves BSR out instead of failing.
        Assert.DoesNotContain(SparseStorage.Compare(twenty, 5, 5), o => o.Kind == "bsr");
    }

    [Fact]
    public void SemiStructured_RefusesMatricesBreakingThePattern()
    {
        DenseTensor w = DenseTensor.FromValues([1, 1, 1, 0, 0, 0, 0, 0], 1, 8);
        ArgumentException e = Assert.Throws<ArgumentException>("matrix", () => SemiStructuredTensor.FromDense(w));
        Assert.Contains("3 non-zero", e.Message);
        Assert.Throws<ArgumentException>("pruned", () => SemiStructuredTensor.FromPruned(Prune(w)));
        Assert.False(SemiStructuredTensor.Fits(SparsityMask.FromNonZeros(w)));
        Assert.True(SemiStructuredTensor.Fits(SparsityMask.FromNonZeros(w), 3, 4));
        // Columns must be whole groups.
        Assert.Throws<ArgumentException>("matrix", () => SemiStructuredTensor.FromDense(new DenseTensor(2, 6)));
        Assert.Throws<ArgumentException>("columns", () => SemiStructuredTensor.ComputeStorageBits(2, 6));
        Assert.False(SemiStructuredTensor.Fits(SparsityMask.FromNonZeros(new DenseTensor(2, 6))));
        // N and M out of range.
        Assert.Throws<ArgumentOutOfRangeException>(() => SemiStructuredTensor.FromDense(new DenseTensor(1, 4), 0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => SemiStructuredTensor.FromDense(new DenseTensor(1, 4), 5, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => SemiStructuredTensor.FromDense(new DenseTensor(1, 512), 1, 512));
        Assert.Throws<ArgumentOutOfRangeException>(() => SemiStructuredTensor.FromDense(new DenseTensor(1, 4), 1, 1));
    }

    [Fact]
    public void Bsr_RefusesBlocksThatDoNotTile()
    {
        var w = new DenseTensor(6, 8);
        Assert.Throws<ArgumentException>("matrix", () => BsrTensor.FromDense(w, 4, 4));
        Assert.Throws<ArgumentException>("matrix", () => BsrTensor.FromDense(w, 3, 3));
        Assert.Throws<ArgumentException>("pruned", () => BsrTensor.FromPruned(Prune(w), 4, 4));
        Assert.Throws<ArgumentException>("mask", () => BsrTensor.CountBlocks(SparsityMask.FromNonZeros(w), 4, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => BsrTensor.FromDense(w, 0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => SparseStorage.Smallest(Prune(w), 2, -1));
    }

    [Fact]
    public void Layouts_RefuseNonMatrices()
    {
        var cube = new DenseTensor(2, 2, 4);
        Assert.Throws<ArgumentException>("matrix", () => CsrTensor.FromDense(cube));
        Assert.Throws<ArgumentException>("matrix", () => SemiStructuredTensor.FromDense(cube));
        Assert.Throws<ArgumentException>("matrix", () => BsrTensor.FromDense(cube, 1, 1));
    }

    [Fact]
    public void CorruptFiles_AreRejected()
    {
        // Row pointers that go back, a repeated column, a column past the end, a 2:4 index pair out of order.
        AssertCorrupt("csr", 2, 3, w =>
        {
            w.Add<int>("t.row_pointers", SafetensorsDType.I32, [3], new int[] { 0, 2, 1 });
            w.Add<ushort>("t.column_indices", SafetensorsDType.U16, [1], new ushort[] { 0 });
            w.Add<float>("t.values", SafetensorsDType.F32, [1], new float[] { 1 });
        });
        AssertCorrupt("csr", 1, 3, w =>
        {
            w.Add<int>("t.row_pointers", SafetensorsDType.I32, [2], new int[] { 0, 2 });
            w.Add<ushort>("t.column_indices", SafetensorsDType.U16, [2], new ushort[] { 1, 1 });
            w.Add<float>("t.values", SafetensorsDType.F32, [2], new float[] { 1, 2 });
        });
        AssertCorrupt("bsr", 2, 2, w =>
        {
            w.SetMetadata("t.block_rows", "1");
            w.SetMetadata("t.block_columns", "1");
            w.Add<int>("t.block_row_pointers", SafetensorsDType.I32, [3], new int[] { 0, 1, 1 });
            w.Add<ushort>("t.block_column_indices", SafetensorsDType.U16, [1], new ushort[] { 2 });
            w.Add<float>("t.values", SafetensorsDType.F32, [1, 1, 1], new float[] { 1 });
        });
        AssertCorrupt("2:4", 1, 4, w =>
        {
            w.SetMetadata("t.n", "2");
            w.SetMetadata("t.m", "4");
            w.Add<float>("t.values", SafetensorsDType.F32, [1, 2], new float[] { 1, 2 });
            w.Add<byte>("t.indices", SafetensorsDType.U8, [1], new byte[] { 0b01_10 });      // 2 then 1
        });
        AssertCorrupt("2:4", 1, 8, w =>                                                           // kind and n:m disagree
        {
            w.SetMetadata("t.n", "1");
            w.SetMetadata("t.m", "4");
            w.Add<float>("t.values", SafetensorsDType.F32, [1, 2], new float[] { 1, 2 });
            w.Add<byte>("t.indices", SafetensorsDType.U8, [1], new byte[] { 0 });
        });
    }

    [Fact]
    public void Csr_ReadsInt64RowPointers()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        writer.SetMetadata("t.kind", "csr");
        writer.SetMetadata("t.rows", "2");
        writer.SetMetadata("t.columns", "3");
        writer.Add<long>("t.row_pointers", SafetensorsDType.I64, [3], new long[] { 0, 1, 2 });
        writer.Add<ushort>("t.column_indices", SafetensorsDType.U16, [2], new ushort[] { 2, 0 });
        writer.Add<float>("t.values", SafetensorsDType.F32, [2], new float[] { 5, 6 });
        writer.Save(folder.File("t.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("t.safetensors"));
        CompressedTensor read = SparseCases.Serializer.Read(checkpoint, "t");
        Assert.Equal([0, 0, 5, 6, 0, 0], read.Decompress().Span.ToArray());
    }

    private static PrunedTensor Density(int rows, int columns, double density, int seed)
    {
        var random = new Random(seed);
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed);
        bool[] keep = Enumerable.Range(0, rows * columns).Select(_ => random.NextDouble() < density).ToArray();
        return new PrunedTensor(w, SparsityMask.FromPredicate(rows, columns, keep, static (k, i) => k[i]));
    }

    private static void AssertCorrupt(string kind, int rows, int columns, Action<SafetensorsWriter> parts)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        writer.SetMetadata("t.kind", kind);
        writer.SetMetadata("t.rows", rows.ToString(System.Globalization.CultureInfo.InvariantCulture));
        writer.SetMetadata("t.columns", columns.ToString(System.Globalization.CultureInfo.InvariantCulture));
        parts(writer);
        writer.Save(folder.File("t.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("t.safetensors"));
        Assert.Throws<InvalidDataException>(() => SparseCases.Serializer.Read(checkpoint, "t"));
    }
}
