using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;

namespace Compression.LowRank.Tests;

public class MathNetInteropTests
{
    [Property(MaxTest = 50)]
    public bool Single_RoundTrip_IsExact_AndKeepsIndices(PositiveInt r, PositiveInt c, int seed)
    {
        DenseTensor t = RandomData.GaussianMatrix(r.Get % 30 + 1, c.Get % 30 + 1, seed);
        Matrix<float> m = t.ToMathNetMatrix();
        bool indices = Enumerable.Range(0, t.Rows).All(i => Enumerable.Range(0, t.Columns).All(j => m[i, j] == t[i, j]));
        return indices && m.ToDenseTensor().BitwiseEquals(t);
    }

    [Fact]
    public void Double_RoundTrip_IsExact_AndMatrixProductsAgree()
    {
        DenseTensor a = RandomData.GaussianMatrix(7, 5, seed: 1);
        Matrix<double> m = a.ToMathNetMatrixDouble();
        Assert.True(m.ToDenseTensor().BitwiseEquals(a));

        // A·Aᵀ through MathNet equals the float64 triple loop over our row-major storage.
        Matrix<double> gram = m * m.Transpose();
        for (int i = 0; i < 7; i++)
        {
            for (int j = 0; j < 7; j++)
            {
                double expected = Enumerable.Range(0, 5).Sum(k => (double)a[i, k] * a[j, k]);
                Assert.Equal(expected, gram[i, j], 1e-12);
            }
        }
    }

    [Fact]
    public void NonMatrices_AreRejected() =>
        Assert.Throws<ArgumentException>("tensor", () => new DenseTensor(2, 3, 4).ToMathNetMatrix());
}
