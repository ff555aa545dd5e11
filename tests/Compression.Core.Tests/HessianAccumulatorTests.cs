using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;

namespace Compression.Core.Tests;

public class HessianAccumulatorTests
{
    [Theory]
    [InlineData(AccumulationPrecision.Double, 1, 1)]
    [InlineData(AccumulationPrecision.Double, 37, 5)]
    [InlineData(AccumulationPrecision.Double, 64, 3)]
    [InlineData(AccumulationPrecision.Single, 37, 5)]
    [InlineData(AccumulationPrecision.Single, 96, 4)]
    public void Add_MatchesFloat64NaiveReference(AccumulationPrecision precision, int columns, int batches)
    {
        var random = new Random(columns * 31 + batches);
        var data = new List<float[]>();
        var accumulator = new HessianAccumulator(columns, new HessianAccumulatorOptions { Precision = precision });
        for (int b = 0; b < batches; b++)
        {
            int rows = random.Next(1, 50);
            // A non-zero mean makes off-diagonal entries large too, as real activations have.
            float[] batch = RandomData.Gaussian(rows * columns, seed: 1000 + b).Select(v => v + 0.5f).ToArray();
            data.Add(batch);
            accumulator.Add(batch, rows);
        }

        double[] expected = Reference.Hessian(data, columns);
        double[] actual = accumulator.GetHessian();
        double error = Reference.RelativeFrobeniusError(actual, expected);

        // float64 accumulation of float32 products is exact to ~1e-16 per term; 1e-12 leaves room for the order of
        // summation. float32 accumulation carries ~6e-8 per rounding over dot products of at most 50 terms plus the
        // rescaling per batch: 1e-6 (the acceptance bound) holds with margin.
        Assert.True(error < (precision == AccumulationPrecision.Double ? 1e-12 : 1e-6), $"relative error {error:E3}");
        Assert.Equal(data.Sum(b => b.Length / columns), accumulator.SampleCount);
    }

    [Property(MaxTest = 40)]
    public bool Add_AnyShapesAndBatches_StaysWithin1e6OfReference(PositiveInt c, PositiveInt b, int seed)
    {
        int columns = c.Get % 48 + 1, batches = b.Get % 6 + 1;
        var random = new Random(seed);
        var data = new List<float[]>();
        var accumulator = new HessianAccumulator(columns);
        for (int i = 0; i < batches; i++)
        {
            int rows = random.Next(0, 40);
            float[] batch = RandomData.Gaussian(rows * columns, seed + i, standardDeviation: (float)Math.Pow(10, random.Next(-3, 4)));
            data.Add(batch);
            accumulator.Add(batch, rows);
        }

        if (accumulator.SampleCount == 0)
        {
            return accumulator.GetHessian().All(v => v == 0);
        }

        return Reference.RelativeFrobeniusError(accumulator.GetHessian(), Reference.Hessian(data, columns)) < 1e-6;
    }

    [Fact]
    public void Add_LargeBatch_InChunks_EqualsReference()
    {
        const int Columns = 16;
        var accumulator = new HessianAccumulator(Columns) { ChunkElementBudget = 7 * Columns };   // 7-row chunks
        float[] batch = RandomData.Gaussian(100 * Columns, seed: 5);
        accumulator.Add(batch, 100);
        Assert.True(Reference.RelativeFrobeniusError(accumulator.GetHessian(), Reference.Hessian([batch], Columns)) < 1e-12);
    }

    [Fact]
    public void Hessian_IsSymmetric_AndDiagonalMatches()
    {
        var accumulator = new HessianAccumulator(9);
        accumulator.Add(RandomData.GaussianMatrix(20, 9, seed: 3));
        double[] h = accumulator.GetHessian();
        for (int i = 0; i < 9; i++)
        {
            for (int j = 0; j < 9; j++)
            {
                Assert.Equal(h[i * 9 + j], h[j * 9 + i]);
            }
        }

        Assert.Equal(Enumerable.Range(0, 9).Select(i => h[i * 9 + i]).ToArray(), accumulator.GetDiagonal());
    }

    [Fact]
    public void Add_AcceptsActivationsOfAnyLeadingShape()
    {
        float[] values = RandomData.Gaussian(2 * 3 * 4, seed: 9);
        var flat = new HessianAccumulator(4);
        flat.Add(values, 6);
        var batched = new HessianAccumulator(4);
        batched.Add(new DenseTensor(values, 2, 3, 4));
        Assert.Equal(flat.GetHessian(), batched.GetHessian());
        Assert.Equal(6, batched.SampleCount);
    }

    [Fact]
    public void Merge_EqualsAccumulatingEverythingInOne()
    {
        float[] a = RandomData.Gaussian(13 * 6, seed: 1), b = RandomData.Gaussian(29 * 6, seed: 2);
        var one = new HessianAccumulator(6);
        one.Add(a, 13);
        one.Add(b, 29);
        var left = new HessianAccumulator(6);
        left.Add(a, 13);
        var right = new HessianAccumulator(6);
        right.Add(b, 29);
        left.Merge(right);
        Assert.Equal(42, left.SampleCount);
        Assert.True(Reference.RelativeFrobeniusError(left.GetHessian(), one.GetHessian()) < 1e-14);
    }

    [Fact]
    public void ZeroRows_ChangeNothing_AndEmptyAccumulatorIsZero()
    {
        var accumulator = new HessianAccumulator(3);
        accumulator.Add(ReadOnlySpan<float>.Empty, 0);
        Assert.Equal(0, accumulator.SampleCount);
        Assert.All(accumulator.GetHessian(), v => Assert.Equal(0.0, v));
        accumulator.Add(new DenseTensor(0, 3));
        Assert.Equal(0, accumulator.SampleCount);
    }

    [Fact]
    public void Reset_ForgetsEverything()
    {
        var accumulator = new HessianAccumulator(3);
        accumulator.Add(RandomData.GaussianMatrix(4, 3, seed: 1));
        accumulator.Reset();
        Assert.Equal(0, accumulator.SampleCount);
        Assert.All(accumulator.GetHessian(), v => Assert.Equal(0.0, v));
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void Add_RejectsNonFiniteActivations_AndKeepsState(float bad)
    {
        var accumulator = new HessianAccumulator(3);
        accumulator.Add(RandomData.GaussianMatrix(4, 3, seed: 1));
        double[] before = accumulator.GetHessian();
        float[] batch = RandomData.Gaussian(6, seed: 2);
        batch[4] = bad;
        Assert.Throws<ArgumentException>("activations", () => accumulator.Add(batch, 2));
        Assert.Equal(before, accumulator.GetHessian());
        Assert.Equal(4, accumulator.SampleCount);
    }

    [Fact]
    public void BadArguments_GiveClearExceptions()
    {
        Assert.Throws<ArgumentOutOfRangeException>("columns", () => new HessianAccumulator(0));
        Assert.Throws<ArgumentOutOfRangeException>("columns", () => new HessianAccumulator(50_000));
        var accumulator = new HessianAccumulator(4);
        Assert.Throws<ArgumentException>("activations", () => accumulator.Add(new float[7], 2));
        Assert.Throws<ArgumentOutOfRangeException>("rows", () => accumulator.Add(new float[4], -1));
        Assert.Throws<ArgumentException>("activations", () => accumulator.Add(new DenseTensor(2, 5)));
        Assert.Throws<ArgumentException>("other", () => accumulator.Merge(new HessianAccumulator(5)));
        Assert.Throws<ArgumentException>("destination", () => accumulator.CopyHessianTo(new double[15]));
        Assert.Throws<ArgumentOutOfRangeException>("Precision", () => new HessianAccumulatorOptions { Precision = (AccumulationPrecision)7 });
        Assert.Throws<ArgumentOutOfRangeException>("MaxDegreeOfParallelism", () => new HessianAccumulatorOptions { MaxDegreeOfParallelism = 0 });
    }
}
