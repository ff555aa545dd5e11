using Compression.Pruning.Kernels;
using Compression.Pruning.Storage;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Pruning.Tests;

/// <summary>The sparse × dense kernels against a float64 scalar reference on random inputs.</summary>
public class SparseMatrixMultiplyTests
{
    /// <summary>
    /// Y[b, r] = Σ_c A[r, c]·X[b, c] in float64, and the scale Σ_c |A[r, c]·X[b, c]| of each sum. The kernels sum
    /// at most a few hundred float32 products, whose rounding error is bounded by n·2⁻²⁴·scale ≈ 2e-5·scale for n =
    /// 400 in the worst case and ~√n·6e-8·scale ≈ 1e-6·scale in practice; 1e-5 relative to the scale leaves a margin
    /// while still catching a single misplaced product (of order 1/n of the scale).
    /// </summary>
    private static void AssertMatchesReference(CompressedTensor a, DenseTensor x, DenseTensor y)
    {
        DenseTensor dense = a.Decompress();
        for (int b = 0; b < x.Rows; b++)
        {
            for (int r = 0; r < a.Rows; r++)
            {
                double sum = 0, scale = 0;
                for (int c = 0; c < a.Columns; c++)
                {
                    double product = (double)dense[r, c] * x[b, c];
                    sum += product;
                    scale += Math.Abs(product);
                }

                double error = Math.Abs(y[b, r] - sum);
                Assert.True(error <= 1e-5 * scale + 1e-30, $"Y[{b}, {r}] = {y[b, r]:R}, reference {sum:R} (scale {scale:G3}, {a.Kind})");
            }
        }
    }

    private static DenseTensor Poisoned(int rows, int columns)
    {
        var y = new DenseTensor(rows, columns);
        y.Span.Fill(float.NaN);                 // every output must be written, rows with nothing stored included
        return y;
    }

    // Batches cover the paths: gather dot (1), scalar tail only (3), one 8-wide vector (8), 32-wide blocks with vector
    // and scalar tails (43), 64-wide blocks (75); shapes are odd, and 130 × 300 × 43 is large enough to run in parallel.
    [Theory]
    [InlineData(1, 13, 37, 1)]
    [InlineData(2, 13, 37, 3)]
    [InlineData(3, 13, 37, 8)]
    [InlineData(4, 13, 37, 43)]
    [InlineData(5, 130, 300, 1)]
    [InlineData(6, 130, 300, 43)]
    [InlineData(7, 1, 1, 5)]
    [InlineData(8, 20, 50, 75)]
    public void Csr_MatchesTheReference(int seed, int rows, int columns, int batch)
    {
        PrunedTensor pruned = SparseCases.RandomPruned(rows, columns, seed);
        DenseTensor x = RandomData.GaussianMatrix(batch, columns, seed + 100);
        DenseTensor y = Poisoned(batch, rows);
        CsrTensor a = CsrTensor.FromPruned(pruned);
        SparseMatrixMultiply.Multiply(a, x, y);
        AssertMatchesReference(a, x, y);
    }

    [Theory]
    [InlineData(1, 1, 1, 3, 7, 1)]
    [InlineData(2, 16, 16, 4, 5, 1)]
    [InlineData(3, 16, 16, 4, 5, 9)]
    [InlineData(4, 16, 16, 4, 5, 64)]
    [InlineData(5, 3, 5, 7, 6, 1)]
    [InlineData(6, 3, 5, 7, 6, 43)]
    [InlineData(7, 8, 8, 20, 30, 40)]
    [InlineData(8, 6, 12, 3, 4, 1)]            // batch 1: four-row pass plus two rows, one vector plus a scalar tail
    [InlineData(9, 5, 24, 2, 3, 1)]            // batch 1: a vector pair plus one vector per block row segment
    public void Bsr_MatchesTheReference(int seed, int blockRows, int blockColumns, int gridRows, int gridColumns, int batch)
    {
        PrunedTensor pruned = SparseCases.RandomBlocks(gridRows, gridColumns, blockRows, blockColumns, 0.4, seed);
        DenseTensor x = RandomData.GaussianMatrix(batch, pruned.Columns, seed + 100);
        DenseTensor y = Poisoned(batch, pruned.Rows);
        BsrTensor a = BsrTensor.FromPruned(pruned, blockRows, blockColumns);
        SparseMatrixMultiply.Multiply(a, x, y);
        AssertMatchesReference(a, x, y);
    }

    [Theory]
    [InlineData(1, 2, 4, 9, 11, 1)]
    [InlineData(2, 2, 4, 9, 11, 33)]
    [InlineData(3, 1, 4, 5, 8, 8)]
    [InlineData(4, 3, 5, 7, 4, 2)]
    [InlineData(5, 2, 4, 160, 100, 40)]
    [InlineData(6, 2, 4, 10, 6, 70)]
    public void SemiStructured_MatchesTheReference(int seed, int n, int m, int rows, int groups, int batch)
    {
        PrunedTensor pruned = SparseCases.RandomSemiStructured(rows, groups, n, m, seed);
        DenseTensor x = RandomData.GaussianMatrix(batch, pruned.Columns, seed + 100);
        DenseTensor y = Poisoned(batch, rows);
        SemiStructuredTensor a = SemiStructuredTensor.FromPruned(pruned, n, m);
        SparseMatrixMultiply.Multiply(a, x, y);
        AssertMatchesReference(a, x, y);
    }

    [Fact]
    public void WideIndices_AndActivationsOfHigherRank_Work()
    {
        // int32 columns (more than 65 536) and X as [2, 3, in]: its matrix view has 6 rows.
        var w = new DenseTensor(3, 70000);
        w[0, 69999] = 2;
        w[0, 5] = -1;
        w[2, 65536] = 3;
        CsrTensor a = CsrTensor.FromDense(w);
        Assert.Equal(32, a.ColumnIndexBits);
        DenseTensor x = RandomData.GaussianMatrix(6, 70000, seed: 9).Reshape(2, 3, 70000);
        DenseTensor y = Poisoned(6, 3);
        SparseMatrixMultiply.Multiply(a, x, y);
        AssertMatchesReference(a, x.Reshape(6, 70000), y);
    }

    [Fact]
    public void EmptyShapes_WriteZerosOrNothing()
    {
        // No input features: Y = 0. No rows or no batch: nothing to do.
        DenseTensor y = Poisoned(2, 3);
        SparseMatrixMultiply.Multiply(CsrTensor.FromDense(new DenseTensor(3, 0)), new DenseTensor(2, 0), y);
        Assert.All(y.Span.ToArray(), v => Assert.Equal(0f, v));
        SparseMatrixMultiply.Multiply(CsrTensor.FromDense(new DenseTensor(0, 4)), new DenseTensor(2, 4), new DenseTensor(2, 0));
        SparseMatrixMultiply.Multiply(BsrTensor.FromDense(new DenseTensor(4, 4), 2, 2), new DenseTensor(0, 4), new DenseTensor(0, 4));
        DenseTensor zeros = Poisoned(3, 4);
        SparseMatrixMultiply.Multiply(BsrTensor.FromDense(new DenseTensor(4, 4), 2, 2), RandomData.GaussianMatrix(3, 4, 1), zeros);
        Assert.All(zeros.Span.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void MismatchedShapes_AreRejected()
    {
        CsrTensor a = CsrTensor.FromDense(RandomData.GaussianMatrix(4, 6, 1));
        Assert.Throws<ArgumentException>("x", () => SparseMatrixMultiply.Multiply(a, new DenseTensor(2, 5), new DenseTensor(2, 4)));
        Assert.Throws<ArgumentException>("y", () => SparseMatrixMultiply.Multiply(a, new DenseTensor(2, 6), new DenseTensor(2, 6)));
        Assert.Throws<ArgumentException>("y", () => SparseMatrixMultiply.Multiply(a, new DenseTensor(2, 6), new DenseTensor(3, 4)));
        BsrTensor b = BsrTensor.FromDense(RandomData.GaussianMatrix(4, 6, 1), 2, 3);
        Assert.Throws<ArgumentException>("x", () => SparseMatrixMultiply.Multiply(b, new DenseTensor(2, 4), new DenseTensor(2, 4)));
        SemiStructuredTensor s = SemiStructuredTensor.FromDense(new DenseTensor(4, 8));
        Assert.Throws<ArgumentException>("y", () => SparseMatrixMultiply.Multiply(s, new DenseTensor(2, 8), new DenseTensor(2, 8)));
        // Y over the same storage as X.
        var shared = new float[48];
        Assert.Throws<ArgumentException>("y", () =>
            SparseMatrixMultiply.Multiply(CsrTensor.FromDense(new DenseTensor(6, 6)), new DenseTensor(shared.AsMemory(0, 36), 6, 6), new DenseTensor(shared.AsMemory(12, 36), 6, 6)));
        Assert.Throws<ArgumentNullException>(() => SparseMatrixMultiply.Multiply((CsrTensor)null!, new DenseTensor(1, 1), new DenseTensor(1, 1)));
    }
}
