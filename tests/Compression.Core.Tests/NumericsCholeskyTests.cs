using Compression.Numerics;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Core.Tests;

public class NumericsCholeskyTests
{
    // Condition numbers stay below ~100 for A = B·Bᵀ/n + 0.5·I, so float64 results carry about 13 good digits:
    // backward error of Cholesky is ≤ c·n·2⁻⁵³·‖A‖ (≈ 3e-14 for n = 300), inverse errors are that times κ(A).
    private const double ReconstructionTolerance = 1e-12;
    private const double InverseTolerance = 1e-10;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(127)]
    [InlineData(128)]
    [InlineData(129)]
    [InlineData(257)]
    [InlineData(300)]
    public void TryFactor_ReconstructsA_AndLeavesUpperTriangleUntouched(int n)
    {
        double[] a = RandomSpd(n, seed: n);
        double[] work = (double[])a.Clone();
        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                work[i * n + j] = double.NaN;   // proves the upper triangle is never read
            }
        }

        Assert.True(Cholesky.TryFactor(work, n));
        double[] l = LowerOf(work, n);
        Assert.True(RelativeError(MultiplyTransposed(l, l, n), a) < ReconstructionTolerance);
        for (int i = 0; i < n; i++)
        {
            Assert.True(l[i * n + i] > 0);
            for (int j = i + 1; j < n; j++)
            {
                Assert.True(double.IsNaN(work[i * n + j]));
            }
        }
    }

    [Property(MaxTest = 25)]
    public Property TryFactor_AnySize_ReconstructsA() =>
        Prop.ForAll(Gen.Choose(1, 200).ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), (n, seed) =>
        {
            double[] a = RandomSpd(n, seed);
            double[] work = (double[])a.Clone();
            return Cholesky.TryFactor(work, n)
                && RelativeError(MultiplyTransposed(LowerOf(work, n), LowerOf(work, n), n), a) < ReconstructionTolerance;
        });

    [Theory]
    [InlineData(1, 0)]
    [InlineData(5, 3)]
    [InlineData(200, 150)]     // the failing pivot lies beyond the first 128-column block
    public void TryFactor_IndefiniteMatrix_ReturnsFalse(int n, int negativeAt)
    {
        double[] a = RandomSpd(n, seed: 9);
        a[negativeAt * n + negativeAt] = -50;
        Assert.False(Cholesky.TryFactor(a, n));
    }

    [Fact]
    public void TryFactor_NaNOrSingular_ReturnsFalse()
    {
        double[] nan = RandomSpd(10, seed: 1);
        nan[5 * 10 + 2] = double.NaN;
        Assert.False(Cholesky.TryFactor(nan, 10));
        double[] singular = [1, 1, 1, 1];   // rank one: the second pivot is exactly 0
        Assert.False(Cholesky.TryFactor(singular, 2));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(33)]
    [InlineData(129)]
    [InlineData(300)]
    public void Invert_TimesA_IsIdentity(int n)
    {
        double[] a = RandomSpd(n, seed: 100 + n);
        double[] l = (double[])a.Clone();
        Assert.True(Cholesky.TryFactor(l, n));
        double[] inverse = new double[n * n];
        Cholesky.Invert(l, n, inverse);
        Assert.True(MaxDeviationFromIdentity(Multiply(inverse, a, n), n) < InverseTolerance);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < i; j++)
            {
                Assert.Equal(inverse[i * n + j], inverse[j * n + i]);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(40)]
    [InlineData(128)]
    [InlineData(131)]
    [InlineData(300)]
    public void TryUpperFactorOfInverse_GivesUpperU_WithUtUEqualToInverse(int n)
    {
        double[] a = RandomSpd(n, seed: 200 + n);
        double[] u = new double[n * n];
        Assert.True(Cholesky.TryUpperFactorOfInverse(a, n, u));
        double[] ut = Transpose(u, n);
        for (int i = 0; i < n; i++)
        {
            Assert.True(u[i * n + i] > 0);
            for (int j = 0; j < i; j++)
            {
                Assert.Equal(0.0, u[i * n + j]);
            }
        }

        // Uᵀ·U·A = I is the defining property of the factor of A⁻¹.
        Assert.True(MaxDeviationFromIdentity(Multiply(Multiply(ut, u, n), a, n), n) < InverseTolerance);

        // It is also what the three-step torch route would give: the Cholesky factor of the explicit inverse.
        double[] l = (double[])a.Clone();
        Assert.True(Cholesky.TryFactor(l, n));
        double[] inverse = new double[n * n];
        Cholesky.Invert(l, n, inverse);
        Assert.True(Cholesky.TryFactor(inverse, n));
        double[] reference = Transpose(LowerOf(inverse, n), n);
        Assert.True(RelativeError(u, reference) < InverseTolerance);
    }

    [Fact]
    public void TryUpperFactorOfInverse_Indefinite_ReturnsFalse()
    {
        double[] a = RandomSpd(20, seed: 4);
        a[0] = -1;
        Assert.False(Cholesky.TryUpperFactorOfInverse(a, 20, new double[400]));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(130, 7)]
    [InlineData(300, 200)]
    public void Solves_HaveSmallResiduals(int n, int columns)
    {
        double[] a = RandomSpd(n, seed: n + columns);
        double[] l = (double[])a.Clone();
        Assert.True(Cholesky.TryFactor(l, n));
        l = LowerOf(l, n);
        double[] u = Transpose(l, n);
        var random = new Random(5);
        double[] b = Enumerable.Range(0, n * columns).Select(_ => random.NextDouble() - 0.5).ToArray();

        double[] x = (double[])b.Clone();
        Cholesky.SolveLower(l, n, x, columns);
        Assert.True(RelativeError(MultiplyRect(l, x, n, columns), b) < ReconstructionTolerance);

        x = (double[])b.Clone();
        Cholesky.SolveUpper(u, n, x, columns);
        Assert.True(RelativeError(MultiplyRect(u, x, n, columns), b) < ReconstructionTolerance);

        x = (double[])b.Clone();
        Cholesky.Solve(l, n, x, columns);
        Assert.True(RelativeError(MultiplyRect(a, x, n, columns), b) < InverseTolerance);
    }

    [Fact]
    public void RejectsBadArguments_NamingTheParameter()
    {
        Assert.Equal("a", Assert.Throws<ArgumentException>(() => Cholesky.TryFactor(new double[8], 3)).ParamName);
        Assert.Equal("n", Assert.Throws<ArgumentOutOfRangeException>(() => Cholesky.TryFactor(new double[8], -1)).ParamName);
        Assert.Equal("inverse", Assert.Throws<ArgumentException>(() => Cholesky.Invert(new double[9], 3, new double[8])).ParamName);
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => Cholesky.SolveLower(new double[9], 3, new double[5], 2)).ParamName);
        double[] shared = new double[18];
        Assert.Equal("upper", Assert.Throws<ArgumentException>(() =>
            Cholesky.TryUpperFactorOfInverse(shared.AsSpan(0, 9), 3, shared.AsSpan(5, 9))).ParamName);
    }

    private static double[] RandomSpd(int n, int seed)
    {
        var random = new Random(seed);
        double[] b = Enumerable.Range(0, n * n).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        double[] a = MultiplyTransposed(b, b, n);
        for (int i = 0; i < a.Length; i++)
        {
            a[i] /= n;
        }

        for (int i = 0; i < n; i++)
        {
            a[i * n + i] += 0.5;
        }

        return a;
    }

    private static double[] LowerOf(double[] m, int n)
    {
        double[] lower = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(m, i * n, lower, i * n, i + 1);
        }

        return lower;
    }

    private static double[] Transpose(double[] m, int n)
    {
        double[] t = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                t[j * n + i] = m[i * n + j];
            }
        }

        return t;
    }

    private static double[] MultiplyTransposed(double[] x, double[] y, int n)
    {
        double[] r = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < n; p++)
                {
                    s += x[i * n + p] * y[j * n + p];
                }

                r[i * n + j] = s;
            }
        }

        return r;
    }

    private static double[] Multiply(double[] x, double[] y, int n) => MultiplyRect(x, y, n, n);

    private static double[] MultiplyRect(double[] x, double[] y, int n, int columns)
    {
        double[] r = new double[n * columns];
        for (int i = 0; i < n; i++)
        {
            for (int p = 0; p < n; p++)
            {
                double xip = x[i * n + p];
                for (int j = 0; j < columns; j++)
                {
                    r[i * columns + j] += xip * y[p * columns + j];
                }
            }
        }

        return r;
    }

    private static double RelativeError(double[] actual, double[] expected)
    {
        double error = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            error += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }

        return Math.Sqrt(error / norm);
    }

    private static double MaxDeviationFromIdentity(double[] m, int n)
    {
        double worst = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                worst = Math.Max(worst, Math.Abs(m[i * n + j] - (i == j ? 1 : 0)));
            }
        }

        return worst;
    }
}
