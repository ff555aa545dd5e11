using Compression.Numerics;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Core.Tests;

public class NumericsGemmTests
{
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 },
        { 1, 1, 300 },          // a single dot product longer than the float64 K block (128)
        { 1, 45, 3 },           // one row: only edge tiles
        { 257, 1, 9 },          // tall and skinny
        { 3, 300, 2 },          // short and wide, more than one N tile (256)
        { 13, 17, 19 },         // nothing a multiple of any block
        { 97, 70, 300 },        // K spans several blocks
        { 130, 290, 65 },       // large enough to run in parallel
        { 0, 5, 3 },
        { 5, 0, 3 },
        { 5, 3, 0 },            // K = 0: C = β·C only
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Multiply_Float32_AllTransposes_MatchFloat64Reference(int m, int n, int k)
    {
        foreach (MatrixTranspose ta in Enum.GetValues<MatrixTranspose>())
        {
            foreach (MatrixTranspose tb in Enum.GetValues<MatrixTranspose>())
            {
                foreach ((float alpha, float beta) in new[] { (1f, 0f), (-0.5f, 2f), (2f, 1f) })
                {
                    CheckSingle(m, n, k, ta, tb, alpha, beta, padding: 3, seed: m * 7919 + n * 31 + k);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Multiply_Float64_AllTransposes_MatchFloat64Reference(int m, int n, int k)
    {
        foreach (MatrixTranspose ta in Enum.GetValues<MatrixTranspose>())
        {
            foreach (MatrixTranspose tb in Enum.GetValues<MatrixTranspose>())
            {
                CheckDouble(m, n, k, ta, tb, alpha: -1.5, beta: 0.25, padding: 2, seed: m + n * 17 + k * 101);
            }
        }
    }

    [Fact]
    public void Multiply_LargeParallelProduct_MatchesReference()
    {
        // 400 × 520 × 300: several row and column tasks, full interior tiles and every kind of edge at once.
        CheckSingle(400, 520, 300, MatrixTranspose.None, MatrixTranspose.None, 1f, 1f, padding: 0, seed: 1);
        CheckDouble(400, 520, 300, MatrixTranspose.Transpose, MatrixTranspose.None, 1.0, 0.0, padding: 5, seed: 2);
    }

    [Property(MaxTest = 60)]
    public Property Multiply_AnyShapeTransposeAndStride_MatchesReference()
    {
        Gen<(int, int, int, int, int)> gen =
            from m in Gen.Choose(1, 70)
            from n in Gen.Choose(1, 70)
            from k in Gen.Choose(1, 70)
            from flags in Gen.Choose(0, 3)
            from pad in Gen.Choose(0, 4)
            select (m, n, k, flags, pad);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            (int m, int n, int k, int flags, int pad) = t;
            var ta = (flags & 1) != 0 ? MatrixTranspose.Transpose : MatrixTranspose.None;
            var tb = (flags & 2) != 0 ? MatrixTranspose.Transpose : MatrixTranspose.None;
            CheckSingle(m, n, k, ta, tb, 0.75f, -1f, pad, seed: m * n + k + flags);
            CheckDouble(m, n, k, ta, tb, 0.75, -1.0, pad, seed: m * n + k + flags + 1);
        });
    }

    [Fact]
    public void Multiply_BetaZero_IgnoresNaNInOutput()
    {
        float[] a = [1, 2, 3, 4], b = [5, 6, 7, 8], c = [float.NaN, float.NaN, float.NaN, float.NaN];
        Gemm.Multiply(a, b, c, 2, 2, 2);
        Assert.Equal([19f, 22f, 43f, 50f], c);
    }

    [Theory]
    [InlineData(MatrixTranspose.None, 1, 1)]
    [InlineData(MatrixTranspose.None, 37, 300)]
    [InlineData(MatrixTranspose.Transpose, 140, 20)]
    [InlineData(MatrixTranspose.None, 300, 129)]
    public void SymmetricRankKUpdate_UpdatesLowerTriangleOnly(MatrixTranspose transpose, int n, int k)
    {
        var random = new Random(n * 13 + k);
        int ld = (transpose == MatrixTranspose.None ? k : n) + 1, ldc = n + 2;
        double[] a = RandomArray(random, (transpose == MatrixTranspose.None ? n : k) * ld);
        double[] c = RandomArray(random, n * ldc);
        double[] original = (double[])c.Clone();
        Gemm.SymmetricRankKUpdate(transpose, n, k, -1.0, a, ld, 0.5, c, ldc);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < ldc; j++)
            {
                if (j > i)
                {
                    Assert.Equal(original[i * ldc + j], c[i * ldc + j]);   // strict upper triangle and padding: untouched
                    continue;
                }

                double sum = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = transpose == MatrixTranspose.None ? a[i * ld + p] : a[p * ld + i];
                    double y = transpose == MatrixTranspose.None ? a[j * ld + p] : a[p * ld + j];
                    sum += x * y;
                    magnitude += Math.Abs(x * y);
                }

                double expected = -sum + 0.5 * original[i * ldc + j];
                // float64 sums of k products: each rounding ≤ 2⁻⁵³ relative to the running magnitude.
                Assert.True(Math.Abs(c[i * ldc + j] - expected) <= 4 * (k + 2) * 1.1e-16 * (magnitude + 1), $"({i},{j})");
            }
        }
    }

    [Fact]
    public void SymmetricRankKUpdate_Float32_MatchesFullProductOnLowerTriangle()
    {
        const int N = 70, K = 33;
        var random = new Random(3);
        float[] a = RandomArray(random, N * K).Select(v => (float)v).ToArray();
        float[] full = new float[N * N], lower = new float[N * N];
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.Transpose, N, N, K, 1f, a, K, a, K, 0f, full, N);
        Gemm.SymmetricRankKUpdate(MatrixTranspose.None, N, K, 1f, a, K, 0f, lower, N);
        for (int i = 0; i < N; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                Assert.True(Math.Abs(full[i * N + j] - lower[i * N + j]) <= 1e-4f, $"({i},{j})");
            }

            Assert.All(lower.AsSpan(i * N + i + 1, N - i - 1).ToArray(), v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void Multiply_RejectsBadArguments_NamingTheParameter()
    {
        float[] a = new float[6], b = new float[9], c = new float[4];
        Assert.Equal("a", Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, 2, 2, 4, 1f, a, 4, b, 2, 0f, c, 2)).ParamName);
        Assert.Equal("ldb", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, 2, 2, 3, 1f, a, 3, b, 1, 0f, c, 2)).ParamName);
        Assert.Equal("c", Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, 2, 3, 3, 1f, a, 3, b, 3, 0f, c, 3)).ParamName);
        Assert.Equal("m", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, -1, 2, 3, 1f, a, 3, b, 2, 0f, c, 2)).ParamName);
        Assert.Equal("transposeA", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Gemm.Multiply((MatrixTranspose)7, MatrixTranspose.None, 2, 2, 3, 1f, a, 3, b, 2, 0f, c, 2)).ParamName);
        Assert.Equal("c", Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, 2, 2, 2, 1f, a, 2, b, 2, 0f, a.AsSpan(2), 2)).ParamName);
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => Gemm.Multiply(a.AsSpan(0, 4), b, c, 2, 2, 2)).ParamName);
    }

    private static void CheckSingle(
        int m, int n, int k, MatrixTranspose ta, MatrixTranspose tb, float alpha, float beta, int padding, int seed)
    {
        var random = new Random(seed);
        (int lda, int ldb, int ldc) = LeadingDimensions(m, n, k, ta, tb, padding);
        float[] a = RandomArray(random, StoredRows(ta, m, k) * lda).Select(v => (float)v).ToArray();
        float[] b = RandomArray(random, StoredRows(tb, k, n) * ldb).Select(v => (float)v).ToArray();
        float[] c = RandomArray(random, m * ldc).Select(v => (float)v).ToArray();
        float[] original = (float[])c.Clone();
        Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        // float32 accumulation: each of the k+2 roundings adds at most 2⁻²⁴ of the running magnitude, so the error
        // is below (k+2)·6e-8·(|α|·Σ|a||b| + |β||c|); the factor 2 covers the reference's own float64 rounding.
        Compare(m, n, k, ta, tb, alpha, beta, a.Select(v => (double)v).ToArray(), lda, b.Select(v => (double)v).ToArray(), ldb,
            original.Select(v => (double)v).ToArray(), c.Select(v => (double)v).ToArray(), ldc, 2 * 6e-8);
    }

    private static void CheckDouble(
        int m, int n, int k, MatrixTranspose ta, MatrixTranspose tb, double alpha, double beta, int padding, int seed)
    {
        var random = new Random(seed);
        (int lda, int ldb, int ldc) = LeadingDimensions(m, n, k, ta, tb, padding);
        double[] a = RandomArray(random, StoredRows(ta, m, k) * lda);
        double[] b = RandomArray(random, StoredRows(tb, k, n) * ldb);
        double[] c = RandomArray(random, m * ldc);
        double[] original = (double[])c.Clone();
        Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        // float64: the same bound with the unit roundoff 2⁻⁵³ ≈ 1.1e-16, doubled for the reference's own sum.
        Compare(m, n, k, ta, tb, alpha, beta, a, lda, b, ldb, original, c, ldc, 2 * 1.1e-16);
    }

    private static void Compare(
        int m, int n, int k, MatrixTranspose ta, MatrixTranspose tb, double alpha, double beta,
        double[] a, int lda, double[] b, int ldb, double[] original, double[] actual, int ldc, double unit)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < ldc; j++)
            {
                if (j >= n)
                {
                    Assert.Equal(original[i * ldc + j], actual[i * ldc + j]);   // padding between rows: untouched
                    continue;
                }

                double sum = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = ta == MatrixTranspose.None ? a[i * lda + p] : a[p * lda + i];
                    double y = tb == MatrixTranspose.None ? b[p * ldb + j] : b[j * ldb + p];
                    sum += x * y;
                    magnitude += Math.Abs(x * y);
                }

                double expected = alpha * sum + (beta == 0 ? 0 : beta * original[i * ldc + j]);
                double bound = (k + 2) * unit * (Math.Abs(alpha) * magnitude + Math.Abs(beta * original[i * ldc + j])) + 1e-300;
                double error = Math.Abs(actual[i * ldc + j] - expected);
                Assert.True(error <= bound, $"m={m} n={n} k={k} {ta}/{tb} α={alpha} β={beta}: C[{i},{j}] error {error:E2} > {bound:E2}");
            }
        }
    }

    private static (int Lda, int Ldb, int Ldc) LeadingDimensions(
        int m, int n, int k, MatrixTranspose ta, MatrixTranspose tb, int padding) =>
        ((ta == MatrixTranspose.None ? k : m) + padding, (tb == MatrixTranspose.None ? n : k) + padding, n + padding);

    private static int StoredRows(MatrixTranspose transpose, int rows, int columns) =>
        transpose == MatrixTranspose.None ? rows : columns;

    private static double[] RandomArray(Random random, int count) =>
        Enumerable.Range(0, count).Select(_ => random.NextDouble() * 2 - 1).ToArray();
}
