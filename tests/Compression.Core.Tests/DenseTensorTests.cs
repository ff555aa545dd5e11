using System.Numerics.Tensors;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Core.Tests;

public class DenseTensorTests
{
    [Fact]
    public void Constructor_AllocatesZeros_WithMatrixView()
    {
        var t = new DenseTensor(3, 4);
        Assert.Equal(2, t.Rank);
        Assert.Equal((3, 4, 12), (t.Rows, t.Columns, t.Length));
        Assert.All(t.Span.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void RankThree_IsSeenAsRowsOfTheLastDimension()
    {
        var t = new DenseTensor(2, 5, 7);
        Assert.Equal((10, 7), (t.Rows, t.Columns));
        var vector = new DenseTensor(9);
        Assert.Equal((1, 9), (vector.Rows, vector.Columns));
        var empty = new DenseTensor(4, 0);
        Assert.Equal((4, 0, 0), (empty.Rows, empty.Columns, empty.Length));
    }

    [Theory]
    [InlineData(new[] { -1, 3 })]
    [InlineData(new[] { 100_000, 100_000 })]
    public void Constructor_ThrowsForBadShapes(int[] shape) =>
        Assert.Throws<ArgumentException>("shape", () => new DenseTensor(shape));

    [Fact]
    public void WrappingConstructor_ThrowsWhenLengthDiffers() =>
        Assert.Throws<ArgumentException>("data", () => new DenseTensor(new float[5], 2, 3));

    [Fact]
    public void RowAndColumnViews_ShareStorage()
    {
        DenseTensor t = DenseTensor.FromValues([1, 2, 3, 4, 5, 6], 2, 3);
        Assert.Equal([4f, 5f, 6f], t.Row(1).ToArray());
        ColumnView column = t.Column(2);
        Assert.Equal([3f, 6f], column.ToArray());

        column[1] = 60;
        t.Row(0)[0] = 10;
        Assert.Equal(60f, t[1, 2]);
        Assert.Equal(10f, t.Span[0]);

        column.CopyFrom([30f, 66f]);
        Assert.Equal([10f, 2, 30, 4, 5, 66], t.Span.ToArray());
    }

    [Fact]
    public void Views_ThrowOutsideTheMatrix()
    {
        var t = new DenseTensor(2, 3);
        Assert.Throws<ArgumentOutOfRangeException>("row", () => t.Row(2));
        Assert.Throws<ArgumentOutOfRangeException>("column", () => t.Column(-1));
        Assert.Throws<ArgumentOutOfRangeException>("count", () => t.SliceRows(1, 2));
        Assert.Throws<ArgumentOutOfRangeException>("index", () => t.Column(0)[2]);
    }

    [Fact]
    public void SliceRowsAndReshape_AreZeroCopy()
    {
        DenseTensor t = DenseTensor.FromValues(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 4, 3);
        DenseTensor middle = t.SliceRows(1, 2);
        Assert.Equal([3f, 4, 5, 6, 7, 8], middle.Span.ToArray());
        middle.Span[0] = -1;
        Assert.Equal(-1f, t[1, 0]);

        DenseTensor flat = t.Reshape(2, 2, 3);
        Assert.Equal((4, 3), (flat.Rows, flat.Columns));
        Assert.Throws<ArgumentException>("data", () => t.Reshape(5, 2));
    }

    [Property(MaxTest = 50)]
    public bool Transpose_TwiceIsIdentity_AndMovesEveryElement(PositiveInt r, PositiveInt c, int seed)
    {
        int rows = r.Get % 70 + 1, columns = c.Get % 70 + 1;
        DenseTensor t = RandomData.GaussianMatrix(rows, columns, seed);
        DenseTensor transposed = t.Transpose();
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < columns; j++)
            {
                if (transposed[j, i] != t[i, j])
                {
                    return false;
                }
            }
        }

        return transposed.Transpose().BitwiseEquals(t);
    }

    [Fact]
    public void TensorSpan_RoundTrip_IsZeroCopyOneWay_AndExact()
    {
        DenseTensor t = RandomData.GaussianMatrix(5, 7, seed: 11);
        TensorSpan<float> span = t.AsTensorSpan();
        Assert.Equal(new nint[] { 5, 7 }, span.Lengths.ToArray());
        span[new nint[] { 2, 3 }] = 42f;                         // written through the view
        Assert.Equal(42f, t[2, 3]);

        DenseTensor back = DenseTensor.FromTensorSpan(span);
        Assert.True(back.BitwiseEquals(t));
        back.Span[0] = 1e9f;                          // the copy is independent
        Assert.NotEqual(1e9f, t.Span[0]);
    }

    [Fact]
    public void FromTensorSpan_CopiesStridedSlices()
    {
        float[] data = Enumerable.Range(0, 20).Select(i => (float)i).ToArray();
        Tensor<float> tensor = Tensor.Create(data, [4, 5]);
        ReadOnlyTensorSpan<float> slice = tensor.AsReadOnlyTensorSpan()[1..3, 2..5];
        DenseTensor copy = DenseTensor.FromTensorSpan(slice);
        Assert.Equal([2, 3], copy.Shape.ToArray());
        Assert.Equal([7f, 8, 9, 12, 13, 14], copy.Span.ToArray());
    }

    [Fact]
    public void HalfAndBFloat16_Constructors_AreExact_AndValidateLength()
    {
        Half[] halves = [(Half)1.5f, Half.MaxValue, Half.Epsilon, (Half)(-0f)];
        DenseTensor h = DenseTensor.FromHalf(halves, 2, 2);
        Assert.Equal(halves.Select(x => (float)x).ToArray(), h.Span.ToArray());

        BFloat16[] bf = [(BFloat16)3.140625f, BFloat16.FromRawValue(0x7F7F), BFloat16.FromRawValue(0x0001)];
        DenseTensor b = DenseTensor.FromBFloat16(bf, 3);
        Assert.Equal(bf.Select(x => (float)x).ToArray(), b.Span.ToArray());

        Assert.Throws<ArgumentException>("values", () => DenseTensor.FromHalf(halves, 3));
        Assert.Throws<ArgumentException>("values", () => DenseTensor.FromBFloat16(bf, 2, 2));
    }

    [Fact]
    public void CopyTo_Half_And_BFloat16_RoundToNearestEven()
    {
        // 1 + 2^-8 lies exactly between two BF16 values (1 and 1 + 2^-7): ties go to the even mantissa, 1.
        // 1 + 3·2^-8 lies between 1 + 2^-7 (odd) and 1 + 2^-6 (even): ties go up.
        DenseTensor t = DenseTensor.FromValues([1f + 1f / 256, 1f + 3f / 256, 65520f], 3);
        var bf = new BFloat16[3];
        t.CopyTo(bf);
        Assert.Equal(1f, (float)bf[0]);
        Assert.Equal(1f + 1f / 64, (float)bf[1]);

        var half = new Half[3];
        t.CopyTo(half);
        Assert.True(Half.IsPositiveInfinity(half[2]));   // 65520 is the FP16 overflow threshold: rounds to +inf
    }
}
