using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;
using static Compression.LowRank.Tests.LowRankReference;

namespace Compression.LowRank.Tests;

/// <summary>The exact and randomized SVD against the one-sided Jacobi reference and the Eckart–Young theorem.</summary>
public class SvdProperties
{
    private static double[] Doubles(DenseTensor t) => t.Span.ToArray().Select(x => (double)x).ToArray();

    // Shapes up to 48×48 in every aspect: wide, tall (through the QR route when 1.5× taller) and square.
    private static DenseTensor Matrix(int seed, PositiveInt rows, PositiveInt columns) =>
        RandomData.GaussianMatrix(rows.Get % 48 + 1, columns.Get % 48 + 1, seed);

    [Property(MaxTest = 60)]
    public bool Exact_SingularValuesMatchJacobi_AndFactorsReconstruct(int seed, PositiveInt rows, PositiveInt columns)
    {
        DenseTensor w = Matrix(seed, rows, columns);
        double[] a = Doubles(w);
        var svd = SingularValueDecomposition.Exact(w);
        double[] expected = SingularValues(a, w.Rows, w.Columns);
        double scale = expected[0];
        // Backward-stable SVDs agree to a small multiple of ε·σ₁ (Weyl): 1e-12 leaves room for the sizes here.
        bool values = svd.SingularValues.Zip(expected).All(p => Math.Abs(p.First - p.Second) <= 1e-12 * scale);
        double reconstruction = Math.Sqrt(SquaredDistance(svd.Reconstruct(), a) / SquaredNorm(a));
        return values && svd.Rank == Math.Min(w.Rows, w.Columns) && reconstruction < 1e-13 && Orthonormal(svd);
    }

    [Property(MaxTest = 60)]
    public bool EckartYoung_TruncationErrorIsTheTailEnergy(int seed, PositiveInt rows, PositiveInt columns, PositiveInt rank)
    {
        DenseTensor w = Matrix(seed, rows, columns);
        int r = rank.Get % Math.Min(w.Rows, w.Columns) + 1;
        double[] a = Doubles(w);
        double[] sigma = SingularValues(a, w.Rows, w.Columns);
        double tail = SquaredNorm(sigma.Skip(r));
        double error = SquaredDistance(SingularValueDecomposition.Exact(w).Truncate(r).Reconstruct(), a);
        // The bound: 1e-5 relative; an absolute floor for a zero tail (full rank asked for).
        return Math.Abs(error - tail) <= 1e-5 * tail + 1e-20 * SquaredNorm(a);
    }

    [Property(MaxTest = 40)]
    public bool Randomized_OnDecayingSpectra_IsWithinOnePercentOfOptimal(int seed, PositiveInt rows, PositiveInt columns, PositiveInt rank)
    {
        int m = rows.Get % 60 + 20, n = columns.Get % 60 + 20;
        int r = rank.Get % 10 + 1;
        double[] a = DecayingSpectrum(m, n, 0.8, seed);
        double[] sigma = SingularValues(a, m, n);
        var svd = SingularValueDecomposition.Randomized(a, m, n, r, new RandomizedSvdOptions { Seed = seed });
        double optimal = SquaredNorm(sigma.Skip(r));
        double error = SquaredDistance(svd.Reconstruct(), a);
        // With 10 oversampled directions and 2 power iterations the expected excess is far below 1% on a 0.8^i
        // spectrum (HMT, Theorem 10.7); leading singular values within 1e-6 relative.
        bool values = svd.SingularValues.Zip(sigma).All(p => Math.Abs(p.First - p.Second) <= 1e-6 * p.Second);
        return svd.Rank == r && error <= 1.01 * optimal && values && Orthonormal(svd);
    }

    [Fact]
    public void Randomized_OnAnExactlyLowRankMatrix_RecoversItToRoundOff()
    {
        // Rank 5 in a 70×50 matrix, sketch of 15: the Householder panels must survive exact rank deficiency.
        double[] a = Multiply(Doubles(RandomData.GaussianMatrix(70, 5, 1)), Doubles(RandomData.GaussianMatrix(5, 50, 2)), 70, 5, 50);
        var svd = SingularValueDecomposition.Randomized(a, 70, 50, 5);
        Assert.True(Math.Sqrt(SquaredDistance(svd.Reconstruct(), a) / SquaredNorm(a)) < 1e-12);
        Assert.True(Orthonormal(svd));
    }

    [Fact]
    public void SameSeed_SameFactors_BitForBit()
    {
        DenseTensor w = RandomData.GaussianMatrix(64, 40, 3);
        var first = SingularValueDecomposition.Randomized(w, 8, new RandomizedSvdOptions { Seed = 11 });
        var second = SingularValueDecomposition.Randomized(w, 8, new RandomizedSvdOptions { Seed = 11 });
        Assert.Equal(first.U, second.U);
        Assert.Equal(first.VT, second.VT);
        Assert.Equal(first.SingularValues, second.SingularValues);
    }

    [Fact]
    public void BadInput_SaysWhy()
    {
        DenseTensor w = RandomData.GaussianMatrix(8, 6, 1);
        Assert.Throws<ArgumentOutOfRangeException>("rank", () => SingularValueDecomposition.Randomized(w, 0));
        Assert.Throws<ArgumentOutOfRangeException>("rank", () => SingularValueDecomposition.Randomized(w, 7));
        w.Span[13] = float.NaN;
        ArgumentException e = Assert.Throws<ArgumentException>("matrix", () => SingularValueDecomposition.Exact(w));
        Assert.Contains("(2, 1)", e.Message);
        Assert.Throws<ArgumentException>("matrix", () => SingularValueDecomposition.Exact(new double[5], 2, 3));
        Assert.Throws<ArgumentException>("matrix", () => SingularValueDecomposition.Exact(Array.Empty<double>(), 0, 3));
    }

    private static bool Orthonormal(SingularValueDecomposition svd)
    {
        int k = svd.Rank;
        for (int p = 0; p < k; p++)
        {
            for (int q = p; q < k; q++)
            {
                double uu = 0, vv = 0;
                for (int i = 0; i < svd.Rows; i++)
                {
                    uu += svd.U[i * k + p] * svd.U[i * k + q];
                }

                for (int j = 0; j < svd.Columns; j++)
                {
                    vv += svd.VT[p * svd.Columns + j] * svd.VT[q * svd.Columns + j];
                }

                double expected = p == q ? 1 : 0;
                // Singular vectors of zero singular values are arbitrary but still orthonormal.
                if (Math.Abs(uu - expected) > 1e-10 || Math.Abs(vv - expected) > 1e-10)
                {
                    return false;
                }
            }
        }

        return true;
    }
}
