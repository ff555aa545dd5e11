using System.IO;
using Compression.Quantization.Primitives;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>The fast Walsh–Hadamard transform and <see cref="HadamardRotation"/> against explicit float64 matrices.</summary>
public class HadamardTests
{
    public static TheoryData<int> Sizes() => new() { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096 };

    [Fact]
    public void Transform_OfAKnownVector_IsExact()
    {
        float[] x = [1, 2, 3, 4];
        WalshHadamard.Transform(x);
        Assert.Equal([5f, -1f, -2f, 0f], x);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Transform_EqualsTheExplicitSylvesterMatrix(int n)
    {
        double[,] h = HadamardReference.Sylvester(n);
        float[] x = RandomData.Gaussian(n, seed: n);
        double[] expected = HadamardReference.Multiply(h, x);
        float[] actual = (float[])x.Clone();
        WalshHadamard.Transform(actual);
        // Each output is log2(n) ≤ 12 rounded float32 sums and one rounded product: error ≤ (log2 n + 1)·2⁻²⁴·Σ|x|/√n
        // ≤ 13·6e-8·‖x‖₂ < 1e-6·‖x‖₂ (Σ|x| ≤ √n‖x‖₂).
        double tolerance = 1e-6 * HadamardReference.Norm(x);
        for (int i = 0; i < n; i++)
        {
            Assert.True(Math.Abs(actual[i] - expected[i]) <= tolerance, $"n={n}, i={i}: {actual[i]} vs {expected[i]}");
        }

        double[] wide = Array.ConvertAll(x, v => (double)v);
        WalshHadamard.Transform(wide);
        for (int i = 0; i < n; i++)
        {
            // Float64: the same bound with 2⁻⁵³.
            Assert.True(Math.Abs(wide[i] - expected[i]) <= 1e-14 * HadamardReference.Norm(x) * 13, $"float64 n={n}, i={i}");
        }
    }

    [Fact]
    public void Transform_IsOrthonormalAndSymmetric_ForSizes2To512()
    {
        for (int n = 2; n <= 512; n *= 2)
        {
            // Column j of the transform's matrix is the transform of unit vector e_j.
            var m = new double[n, n];
            var e = new double[n];
            for (int j = 0; j < n; j++)
            {
                Array.Clear(e);
                e[j] = 1;
                WalshHadamard.Transform(e);
                for (int i = 0; i < n; i++)
                {
                    m[i, j] = e[i];
                }
            }

            double[,] product = HadamardReference.Multiply(m, HadamardReference.Transpose(m));
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    // Entries are ±1/√n rounded once; the dot products of n of them err by a few n·2⁻⁵³.
                    Assert.True(Math.Abs(product[i, j] - (i == j ? 1 : 0)) < 1e-13, $"n={n}: (HHᵀ)[{i},{j}] = {product[i, j]}");
                    Assert.Equal(m[i, j], m[j, i]);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Transform_IsItsOwnInverse(int n)
    {
        float[] x = RandomData.Gaussian(n, seed: 100 + n);
        float[] y = (float[])x.Clone();
        WalshHadamard.Transform(y);
        WalshHadamard.Transform(y);
        // Two transforms: twice the single-transform bound.
        double tolerance = 2e-6 * HadamardReference.Norm(x);
        for (int i = 0; i < n; i++)
        {
            Assert.True(Math.Abs(y[i] - x[i]) <= tolerance, $"n={n}, i={i}");
        }
    }

    [Fact]
    public void Transform_OfAPowerOfFourLength_IsExactOnIntegers()
    {
        // 1/√n is a power of two for n = 4^k, and sums of small integers are exact: two transforms give x back exactly.
        float[] x = Enumerable.Range(0, 256).Select(i => (float)(i % 7 - 3)).ToArray();
        float[] y = (float[])x.Clone();
        WalshHadamard.Transform(y);
        WalshHadamard.Transform(y);
        Assert.Equal(x, y);
    }

    [Fact]
    public void Simd_EqualsTheScalarReference_BitForBit()
    {
        for (int b = 2; b <= 4096; b *= 2)
        {
            float[] x = RandomData.Gaussian(4 * Math.Max(b, 64), seed: b);
            float[] fast = (float[])x.Clone(), slow = (float[])x.Clone();
            HadamardPrimitives.Blocks(fast, b, WalshHadamard.SingleScale(b));
            HadamardPrimitives.ScalarBlocks(slow, b, WalshHadamard.SingleScale(b));
            Assert.Equal(slow.Select(BitConverter.SingleToInt32Bits), fast.Select(BitConverter.SingleToInt32Bits));

            double[] wide = Array.ConvertAll(x, v => v * 1.1);
            double[] fastWide = (double[])wide.Clone(), slowWide = (double[])wide.Clone();
            HadamardPrimitives.Blocks(fastWide, b, WalshHadamard.DoubleScale(b));
            HadamardPrimitives.ScalarBlocks(slowWide, b, WalshHadamard.DoubleScale(b));
            Assert.Equal(slowWide.Select(BitConverter.DoubleToInt64Bits), fastWide.Select(BitConverter.DoubleToInt64Bits));
        }
    }

    [Fact]
    public void TransformBlocks_OnAMatrix_EqualsEachRowAlone_AcrossThreads()
    {
        // 300 × 512 floats is several parallel chunks.
        DenseTensor m = RandomData.GaussianMatrix(300, 512, seed: 5);
        DenseTensor expected = m.Clone();
        for (int r = 0; r < expected.Rows; r++)
        {
            WalshHadamard.TransformBlocks(expected.Row(r), 32);
        }

        WalshHadamard.TransformBlocks(m, 32);
        Assert.True(expected.BitwiseEquals(m));
    }

    [Fact]
    public void TransformBlocks_TransformsEachBlockIndependently()
    {
        float[] x = RandomData.Gaussian(96, seed: 9);
        float[] blocks = (float[])x.Clone();
        WalshHadamard.TransformBlocks(blocks, 32);
        for (int start = 0; start < 96; start += 32)
        {
            float[] one = x.AsSpan(start, 32).ToArray();
            WalshHadamard.Transform(one);
            Assert.Equal(one, blocks.AsSpan(start, 32).ToArray());
        }
    }

    [Theory]
    [InlineData(16, null)]
    [InlineData(32, null)]
    [InlineData(64, 12345L)]
    [InlineData(2, -7L)]
    public void RotateWeight_EqualsWTimesRTransposed_AndUnrotateRoundTrips(int blockSize, long? seed)
    {
        var rotation = new HadamardRotation(blockSize, seed);
        DenseTensor w = RandomData.GaussianMatrix(5, 128, seed: blockSize);
        DenseTensor original = w.Clone();
        DenseTensor rotated = rotation.RotateWeight(w);
        Assert.True(original.BitwiseEquals(w), "the input must be unchanged");

        double[,] r = HadamardReference.Rotation(rotation, 128);
        for (int row = 0; row < w.Rows; row++)
        {
            // Row of W·Rᵀ = R·(row of W).
            double[] expected = HadamardReference.Multiply(r, w.Row(row));
            double tolerance = 1e-6 * HadamardReference.Norm(w.Row(row));
            for (int c = 0; c < 128; c++)
            {
                Assert.True(Math.Abs(rotated[row, c] - expected[c]) <= tolerance, $"({row}, {c})");
            }
        }

        DenseTensor back = rotation.UnrotateWeight(rotated);
        for (int row = 0; row < w.Rows; row++)
        {
            double tolerance = 2e-6 * HadamardReference.Norm(w.Row(row));
            for (int c = 0; c < 128; c++)
            {
                Assert.True(Math.Abs(back[row, c] - w[row, c]) <= tolerance, $"({row}, {c})");
            }
        }
    }

    [Theory]
    [InlineData(16, null)]
    [InlineData(32, 99L)]
    [InlineData(256, 3L)]
    public void RotatedWeightTimesRotatedInput_EqualsWx(int blockSize, long? seed)
    {
        var rotation = new HadamardRotation(blockSize, seed);
        DenseTensor w = RandomData.GaussianMatrix(24, 256, seed: 1);
        DenseTensor x = RandomData.GaussianMatrix(10, 256, seed: 2);   // ten samples, one per row
        DenseTensor wr = rotation.RotateWeight(w), xr = rotation.RotateActivations(x);
        for (int s = 0; s < x.Rows; s++)
        {
            for (int o = 0; o < w.Rows; o++)
            {
                double exact = 0, rotated = 0;
                for (int c = 0; c < 256; c++)
                {
                    exact += (double)w[o, c] * x[s, c];
                    rotated += (double)wr[o, c] * xr[s, c];
                }

                // Both rotated factors carry ≤ 1e-6 relative error per element (see above), so the dot product errs by
                // at most ~2e-6·‖w‖‖x‖.
                double bound = 3e-6 * HadamardReference.Norm(w.Row(o)) * HadamardReference.Norm(x.Row(s));
                Assert.True(Math.Abs(rotated - exact) <= bound, $"sample {s}, output {o}: {rotated} vs {exact}");
            }
        }
    }

    [Fact]
    public void RotateActivationsInPlace_EqualsRotateActivations()
    {
        var rotation = new HadamardRotation(32, 4);
        DenseTensor x = RandomData.GaussianMatrix(7, 64, seed: 3);
        DenseTensor expected = rotation.RotateActivations(x);
        rotation.RotateActivationsInPlace(x);
        Assert.True(expected.BitwiseEquals(x));
    }

    [Theory]
    [InlineData(16, null)]
    [InlineData(64, null)]
    [InlineData(16, 77L)]
    [InlineData(8, 5L)]
    public void RotateHessian_EqualsTheExplicitProduct(int blockSize, long? seed)
    {
        const int n = 64;
        var rotation = new HadamardRotation(blockSize, seed);
        // H = XᵀX/m, symmetric positive semi-definite as in GPTQ; an asymmetric perturbation checks rows and columns
        // are both rotated (not one side mirrored).
        DenseTensor x = RandomData.GaussianMatrix(100, n, seed: 11);
        var h = new double[n, n];
        var flat = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int s = 0; s < x.Rows; s++)
                {
                    sum += (double)x[s, i] * x[s, j];
                }

                h[i, j] = sum / x.Rows + (i == 3 && j == 40 ? 0.5 : 0);
                flat[i * n + j] = h[i, j];
            }
        }

        double[,] r = HadamardReference.Rotation(rotation, n);
        double[,] expected = HadamardReference.Multiply(HadamardReference.Multiply(r, h), HadamardReference.Transpose(r));
        double[] actual = rotation.RotateHessian(flat, n);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                // Float64 throughout; entries are O(1), sums of ≤ 64·64 terms.
                Assert.True(Math.Abs(actual[i * n + j] - expected[i, j]) < 1e-12, $"({i}, {j}): {actual[i * n + j]} vs {expected[i, j]}");
            }
        }
    }

    [Fact]
    public void RandomSigns_AreOrthonormal_DeterministicForASeed_AndDependOnIt()
    {
        const int n = 128;
        var rotation = new HadamardRotation(32, signSeed: 2024);
        DenseTensor identity = new(n, n);
        for (int i = 0; i < n; i++)
        {
            identity[i, i] = 1;
        }

        // Rows of I·Rᵀ are the columns of Rᵀ, i.e. the rows of R; they must be orthonormal.
        DenseTensor rows = rotation.RotateWeight(identity);
        for (int i = 0; i < n; i += 7)
        {
            for (int j = 0; j < n; j++)
            {
                double dot = 0;
                for (int k = 0; k < n; k++)
                {
                    dot += (double)rows[i, k] * rows[j, k];
                }

                // Entries are ±(float32 nearest 1/√32): each squared is 1/32 to within 2⁻²³.
                Assert.True(Math.Abs(dot - (i == j ? 1 : 0)) < 1e-6, $"({i}, {j}) = {dot}");
            }
        }

        DenseTensor w = RandomData.GaussianMatrix(3, n, seed: 8);
        Assert.True(rotation.RotateWeight(w).BitwiseEquals(new HadamardRotation(32, signSeed: 2024).RotateWeight(w)));
        Assert.False(rotation.RotateWeight(w).BitwiseEquals(new HadamardRotation(32, signSeed: 2025).RotateWeight(w)));
        Assert.False(rotation.RotateWeight(w).BitwiseEquals(new HadamardRotation(32).RotateWeight(w)));

        int negative = Enumerable.Range(0, 4096).Count(j => rotation.Sign(j) < 0);
        Assert.InRange(negative, 1848, 2248);   // binomial(4096, ½): ± 6 standard deviations
        Assert.All(Enumerable.Range(0, 64), j => Assert.Equal(1f, new HadamardRotation(32).Sign(j)));
    }

    [Fact]
    public void Signs_AreAFixedFunctionOfSeedAndColumn()
    {
        // Pinned values: a checkpoint written today must rotate identically tomorrow.
        var rotation = new HadamardRotation(16, signSeed: 1);
        string pattern = string.Concat(Enumerable.Range(0, 32).Select(j => rotation.Sign(j) < 0 ? '-' : '+'));
        Assert.Equal(PinnedPattern, pattern);
    }

    /// <summary>Computed independently (a few lines of Python SplitMix64), not by running the library.</summary>
    private const string PinnedPattern = "---++---+-+-+-++----++++++--+---";

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(12)]
    [InlineData(-16)]
    public void Constructor_RejectsBlockSizesThatAreNotPowersOfTwoAboveOne(int blockSize)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new HadamardRotation(blockSize));
        Assert.Equal("BlockSize", e.ParamName);
    }

    [Fact]
    public void BlockThatDoesNotDivideTheColumns_IsRejectedWithTheShapeInTheMessage()
    {
        var rotation = new HadamardRotation(32);
        DenseTensor w = RandomData.GaussianMatrix(2, 48, seed: 1);
        var e = Assert.Throws<ArgumentException>(() => rotation.RotateWeight(w));
        Assert.Contains("48 columns", e.Message, StringComparison.Ordinal);
        Assert.Contains("32", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => rotation.RotateActivations(w));
        Assert.Throws<ArgumentException>(() => rotation.RotateHessian(new double[48 * 48], 48));
        Assert.Throws<ArgumentException>(() => rotation.RotateHessian(new double[10], 4));
        Assert.Throws<ArgumentException>(() => WalshHadamard.Transform(new float[12]));
        Assert.Throws<ArgumentException>(() => WalshHadamard.TransformBlocks(new float[48], 32));
        Assert.Throws<ArgumentException>(() => WalshHadamard.TransformBlocks(new float[48], 3));
    }

    [Fact]
    public void NaNInAWeightOrHessian_IsRejected_NamingWhere()
    {
        var rotation = new HadamardRotation(16);
        DenseTensor w = RandomData.GaussianMatrix(3, 32, seed: 1);
        w[2, 17] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => rotation.RotateWeight(w));
        Assert.Contains("(2, 17)", e.Message, StringComparison.Ordinal);
        w[2, 17] = float.PositiveInfinity;
        Assert.Throws<ArgumentException>(() => rotation.UnrotateWeight(w));

        var h = new double[16 * 16];
        h[5] = double.NaN;
        Assert.Contains("(0, 5)", Assert.Throws<ArgumentException>(() => rotation.RotateHessian(h, 16)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NaNInActivations_SpoilsOnlyItsOwnBlockOfItsOwnSample()
    {
        var rotation = new HadamardRotation(16);
        DenseTensor x = RandomData.GaussianMatrix(2, 48, seed: 1);
        x[1, 20] = float.NaN;
        DenseTensor y = rotation.RotateActivations(x);
        for (int c = 0; c < 48; c++)
        {
            Assert.False(float.IsNaN(y[0, c]));
            Assert.Equal(c is >= 16 and < 32, float.IsNaN(y[1, c]));
        }

        float[] raw = RandomData.Gaussian(32, seed: 2);
        raw[0] = float.NaN;
        WalshHadamard.TransformBlocks(raw, 16);
        Assert.All(raw.AsSpan(0, 16).ToArray(), v => Assert.True(float.IsNaN(v)));
        Assert.All(raw.AsSpan(16).ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Parameters_RoundTripThroughCheckpointMetadata()
    {
        var rotation = new HadamardRotation(32, signSeed: -42);
        Dictionary<string, string> metadata = rotation.Parameters.ToMetadata("layers.0.down_proj.");
        Assert.Equal("32", metadata["layers.0.down_proj.hadamard.block_size"]);
        Assert.Equal("-42", metadata["layers.0.down_proj.hadamard.sign_seed"]);
        HadamardRotationParameters? read = HadamardRotationParameters.FromMetadata(metadata, "layers.0.down_proj.");
        Assert.Equal(rotation.Parameters, read);
        DenseTensor w = RandomData.GaussianMatrix(2, 64, seed: 1);
        Assert.True(rotation.RotateWeight(w).BitwiseEquals(new HadamardRotation(read!).RotateWeight(w)));

        var plain = new HadamardRotationParameters(16);
        Assert.False(plain.ToMetadata().ContainsKey(HadamardRotationParameters.SignSeedKey));
        Assert.Equal(plain, HadamardRotationParameters.FromMetadata(plain.ToMetadata()));
        Assert.Null(HadamardRotationParameters.FromMetadata(new Dictionary<string, string>()));
        Assert.Throws<InvalidDataException>(() => HadamardRotationParameters.FromMetadata(new Dictionary<string, string> { ["hadamard.block_size"] = "24" }));
        Assert.Throws<InvalidDataException>(() => HadamardRotationParameters.FromMetadata(
            new Dictionary<string, string> { ["hadamard.block_size"] = "16", ["hadamard.sign_seed"] = "x" }));
    }

    [Fact]
    public void ForFormat_UsesTheFormatsScaleBlock()
    {
        Assert.Equal(16, HadamardRotation.ForFormat(NumberFormat.FromName("nvfp4")).BlockSize);
        Assert.Equal(32, HadamardRotation.ForFormat(NumberFormat.FromName("mxfp4")).BlockSize);
        Assert.Equal(7L, HadamardRotation.ForFormat(NumberFormat.FromName("mxfp4"), 7).SignSeed);
        Assert.Throws<ArgumentException>(() => HadamardRotation.ForFormat(NumberFormat.FromName("int4")));
    }
}
