using Compression.Calibration;
using Compression.Composition;
using Compression.Quantization;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;
using static Compression.LowRank.Tests.LowRankReference;

namespace Compression.LowRank.Tests;

/// <summary>The factorising compressor: sizes, rank rules, Eckart–Young on the stored factors, activation awareness,
/// EoRA, serialization and bad input.</summary>
public class LowRankCompressorTests
{
    private static double[] Doubles(DenseTensor t) => t.Span.ToArray().Select(x => (double)x).ToArray();

    private static readonly FactorPrecision[] Precisions = [FactorPrecision.Float32, FactorPrecision.Float16, FactorPrecision.BFloat16];

    [Property(MaxTest = 50)]
    public bool FactorSizes_EqualTheReportedBits(int seed, PositiveInt rows, PositiveInt columns, PositiveInt rank, int precision)
    {
        DenseTensor w = RandomData.GaussianMatrix(rows.Get % 40 + 1, columns.Get % 40 + 1, seed);
        int r = rank.Get % Math.Min(w.Rows, w.Columns) + 1;
        FactorPrecision p = Precisions[Math.Abs(precision % 3)];
        LowRankTensor t = new LowRankOptions { Rank = RankRule.Fixed(r), Precision = p }.CreateCompressor().Factorize(w);
        int bits = p == FactorPrecision.Float32 ? 32 : 16;
        return t.Rank == r && t.Left.Rows == w.Rows && t.Left.Columns == r && t.Right.Rows == r && t.Right.Columns == w.Columns
            && t.StorageBits == (long)(t.Left.Length + t.Right.Length) * bits
            && t.BitsPerWeight == (double)(w.Rows + w.Columns) * r * bits / w.Length;
    }

    [Property(MaxTest = 50)]
    public bool StoredFactors_MeetEckartYoung(int seed, PositiveInt rows, PositiveInt columns, PositiveInt rank, bool balanced)
    {
        DenseTensor w = RandomData.GaussianMatrix(rows.Get % 40 + 2, columns.Get % 40 + 2, seed);
        int r = rank.Get % (Math.Min(w.Rows, w.Columns) - 1) + 1;
        var options = new LowRankOptions { Rank = RankRule.Fixed(r), Split = balanced ? FactorSplit.Balanced : FactorSplit.SingularValuesLeft };
        LowRankTensor t = options.CreateCompressor().Factorize(w);
        double[] a = Doubles(w);
        double[] sigma = SingularValues(a, w.Rows, w.Columns);
        double tail = SquaredNorm(sigma.Skip(r));
        double error = SquaredDistance(Doubles(t.Decompress()), a);
        // float32 factors add rounding of order 1e-7·‖W‖ per element to the optimal error; 1e-4 relative covers it
        // for Gaussian matrices, whose tail is a sizeable share of ‖W‖².
        return Math.Abs(error - tail) <= 1e-4 * tail
            && Math.Abs(t.Report!.RelativeError - Math.Sqrt(error / SquaredNorm(a))) <= 1e-6
            && Math.Abs(t.Report.RetainedEnergy - (1 - tail / SquaredNorm(sigma))) <= 1e-9;
    }

    [Fact]
    public void RankRules_PickTheDocumentedRank()
    {
        DenseTensor w = RandomData.GaussianMatrix(60, 90, 4);
        double[] sigma = SingularValues(Doubles(w), 60, 90);
        double total = SquaredNorm(sigma);

        Assert.Equal(7, Compress(w, RankRule.Fixed(7)).Rank);
        // 0.5·60·90/150 = 18 exactly.
        Assert.Equal(18, Compress(w, RankRule.ParameterRatio(0.5)).Rank);
        Assert.Equal(1, Compress(w, RankRule.ParameterRatio(1e-6)).Rank);
        foreach (double fraction in new[] { 0.3, 0.75, 0.9, 1.0 })
        {
            foreach (SvdSolver solver in new[] { SvdSolver.Exact, SvdSolver.Randomized })
            {
                int r = Compress(w, RankRule.Energy(fraction), solver).Rank;
                double kept = SquaredNorm(sigma.Take(r)), short1 = SquaredNorm(sigma.Take(r - 1));
                Assert.True(kept >= fraction * total * (1 - 1e-9), $"{solver} {fraction}: rank {r} keeps {kept / total}");
                Assert.True(short1 < fraction * total, $"{solver} {fraction}: rank {r - 1} already kept {short1 / total}");
            }
        }
    }

    [Fact]
    public void Randomized_AndExact_AgreeOnADecayingSpectrum()
    {
        double[] a = DecayingSpectrum(600, 520, 0.97, 5);
        var w = DenseTensor.FromValues(a.Select(x => (float)x).ToArray(), 600, 520);
        LowRankTensor exact = Compress(w, RankRule.Fixed(40), SvdSolver.Exact);
        LowRankTensor randomized = Compress(w, RankRule.Fixed(40), SvdSolver.Auto);
        Assert.True(randomized.Report!.SingularValues.Count < exact.Report!.SingularValues.Count, "Auto should have sketched");
        // 0.97^i decays slowly; 10 extra directions and 2 power iterations still land within 1% of the optimum.
        Assert.True(randomized.Report.RelativeError <= 1.01 * exact.Report.RelativeError,
            $"randomized {randomized.Report.RelativeError} vs exact {exact.Report.RelativeError}");
    }

    [Fact]
    public void ActivationAware_HasLowerOutputError_ThanPlainTruncation_OnCorrelatedInputs()
    {
        const int n = 48;
        HessianAccumulator h = RandomData.CorrelatedHessian(n, 400, seed: 6);
        double[] hessian = h.GetHessian();
        DenseTensor w = RandomData.GaussianMatrix(32, n, 7);
        var context = new CompressionContext { InputHessian = h };
        double Output(ActivationWhitening whitening)
        {
            var options = new LowRankOptions { Rank = RankRule.Fixed(8), Whitening = whitening, Dampening = 1e-6 };
            LowRankTensor t = options.CreateCompressor().Factorize(w, context);
            double[] delta = Doubles(w).Zip(Doubles(t.Decompress()), (x, y) => x - y).ToArray();
            return OutputError(delta, hessian, 32, n);
        }

        double plain = Output(ActivationWhitening.None), cholesky = Output(ActivationWhitening.Cholesky), eigen = Output(ActivationWhitening.Eigen);
        Assert.True(cholesky < 0.8 * plain, $"SVD-LLM {cholesky} vs plain {plain}");
        // Both whitenings reach the same optimum (any S with S·Sᵀ = H): equal up to float32 factors.
        Assert.True(Math.Abs(cholesky - eigen) <= 1e-4 * cholesky, $"Cholesky {cholesky} vs eigen {eigen}");

        // And it is the optimum: the tail energy of W·L, L·Lᵀ = H (the reference's own Cholesky).
        double[] l = ReferenceCholesky(hessian, n, 1e-6);
        double[] wl = Multiply(Doubles(w), l, 32, n, n);
        double optimal = SquaredNorm(SingularValues(wl, 32, n).Skip(8));
        Assert.True(Math.Abs(cholesky - optimal) <= 1e-4 * optimal, $"SVD-LLM {cholesky} vs optimal {optimal}");
    }

    [Theory]
    [InlineData("int4 g32")]
    [InlineData("int2 channel")]
    [InlineData("2:4 magnitude")]
    [InlineData("gptq int3 g32")]
    [InlineData("sparsegpt 50%")]
    public void Eora_LowersTheOutputErrorOfACompressedLayer(string scheme)
    {
        const int n = 64;
        HessianAccumulator h = RandomData.CorrelatedHessian(n, 500, seed: 8);
        double[] hessian = h.GetHessian();
        DenseTensor w = RandomData.GaussianMatrix(48, n, 9);
        ICompressor main = scheme switch
        {
            "int4 g32" => new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32) }.CreateCompressor(),
            "int2 channel" => new RtnOptions { Format = NumberFormat.Int2, Granularity = Granularity.PerChannel }.CreateCompressor(),
            "gptq int3 g32" => new GptqOptions { Quantization = new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(32) } }.CreateCompressor(),
            "sparsegpt 50%" => Compression.Pruning.SparseGptOptions.Unstructured50.CreateCompressor(),
            _ => Compression.Pruning.NofMOptions.TwoOfFour.CreateCompressor(),
        };
        var context = new CompressionContext { InputHessian = h };
        double Error(CompressedTensor t) => OutputError(Doubles(w).Zip(Doubles(t.Decompress()), (x, y) => x - y).ToArray(), hessian, 48, n);

        double before = Error(main.Compress(w, context));
        CompressedTensor eora = Eora.Compensate(main, rank: 8).Compress(w, context);
        CompressedTensor plain = new ResidualCompressor(main, new LowRankOptions { Rank = RankRule.Fixed(8) }.CreateCompressor()).Compress(w, context);
        double after = Error(eora), afterPlain = Error(plain);
        Assert.True(after < 0.9 * before, $"{scheme}: EoRA {after} vs {before} without");
        Assert.True(after < afterPlain, $"{scheme}: EoRA {after} vs plain SVD of the error {afterPlain}");
        Assert.Equal("residual", eora.Kind);
    }

    [Fact]
    public void Serialization_RoundTripsBitForBit_InEveryPrecision()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        CompressedTensorSerializer serializer = LowRankTensor.Register(CompressedTensorSerializer.Default);
        DenseTensor w = RandomData.GaussianMatrix(20, 36, 10);
        var writer = new SafetensorsWriter();
        var originals = Precisions.ToDictionary(p => p.ToString(), p => new LowRankOptions { Rank = RankRule.Fixed(5), Precision = p }.CreateCompressor().Factorize(w));
        foreach ((string name, LowRankTensor t) in originals)
        {
            serializer.Write(writer, name, t);
        }

        writer.Save(folder.File("lowrank.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("lowrank.safetensors"));
        foreach ((string name, LowRankTensor original) in originals)
        {
            LowRankTensor read = Assert.IsType<LowRankTensor>(serializer.Read(checkpoint, name));
            Assert.Equal(original.Precision, read.Precision);
            Assert.Equal(original.StorageBits, read.StorageBits);
            Assert.True(read.Decompress().BitwiseEquals(original.Decompress()), name);
        }
    }

    [Fact]
    public void SameOptions_SameFactors_BitForBit_AndAZeroWeightStaysZero()
    {
        DenseTensor w = RandomData.GaussianMatrix(530, 600, 11);
        var options = new LowRankOptions { Rank = RankRule.Fixed(16), Solver = SvdSolver.Randomized };
        Assert.True(options.CreateCompressor().Factorize(w).Decompress().BitwiseEquals(options.CreateCompressor().Factorize(w).Decompress()));

        LowRankTensor zero = (options with { Rank = RankRule.Fixed(2) }).CreateCompressor().Factorize(new DenseTensor(5, 7));
        Assert.All(zero.Decompress().Span.ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(0, zero.Report!.RelativeError);
    }

    [Fact]
    public void BadInput_SaysWhy()
    {
        Assert.Throws<ArgumentOutOfRangeException>("rank", () => RankRule.Fixed(0));
        Assert.Throws<ArgumentOutOfRangeException>("fraction", () => RankRule.Energy(0));
        Assert.Throws<ArgumentOutOfRangeException>("fraction", () => RankRule.Energy(1.01));
        Assert.Throws<ArgumentOutOfRangeException>("fraction", () => RankRule.Energy(double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>("ratio", () => RankRule.ParameterRatio(0));
        Assert.Throws<ArgumentOutOfRangeException>("Dampening", () => new LowRankOptions { Dampening = -0.1 });
        Assert.Throws<ArgumentOutOfRangeException>("Oversampling", () => new RandomizedSvdOptions { Oversampling = -1 });

        DenseTensor w = RandomData.GaussianMatrix(6, 9, 12);
        ArgumentException tooBig = Assert.Throws<ArgumentException>("weight", () => Compress(w, RankRule.Fixed(7)));
        Assert.Contains("min(rows, columns) = 6", tooBig.Message);

        w.Span[10] = float.PositiveInfinity;
        Assert.Contains("(1, 1)", Assert.Throws<ArgumentException>("weight", () => Compress(w, RankRule.Fixed(2))).Message);

        DenseTensor good = RandomData.GaussianMatrix(6, 9, 12);
        var aware = new LowRankOptions { Rank = RankRule.Fixed(2), Whitening = ActivationWhitening.Cholesky };
        Assert.Contains("input Hessian", Assert.Throws<ArgumentException>("context", () => aware.CreateCompressor().Factorize(good)).Message);

        // Inputs 3..8 never vary: singular H. Without dampening the Cholesky cannot whiten; eigen whitening clamps.
        var singular = new HessianAccumulator(9);
        float[] x = new float[20 * 9];
        for (int s = 0; s < 20; s++)
        {
            for (int j = 0; j < 3; j++)
            {
                x[s * 9 + j] = (s * 7 + j * 3) % 5 - 2f;
            }
        }

        singular.Add(x, 20);
        var context = new CompressionContext { InputHessian = singular };
        Assert.Contains("positive definite", Assert.Throws<ArgumentException>("context",
            () => (aware with { Dampening = 0 }).CreateCompressor().Factorize(good, context)).Message);
        Assert.True(float.IsFinite((aware with { Dampening = 0, Whitening = ActivationWhitening.Eigen }).CreateCompressor()
            .Factorize(good, context).Decompress().Span.ToArray().Max(MathF.Abs)));
    }

    [Fact]
    public void Cancellation_IsHonoured()
    {
        using var source = new CancellationTokenSource();
        source.Cancel();
        DenseTensor w = RandomData.GaussianMatrix(40, 40, 13);
        Assert.ThrowsAny<OperationCanceledException>(() => new LowRankOptions().CreateCompressor()
            .Factorize(w, new CompressionContext { CancellationToken = source.Token }));
    }

    private static LowRankTensor Compress(DenseTensor w, RankRule rule, SvdSolver solver = SvdSolver.Exact) =>
        new LowRankOptions { Rank = rule, Solver = solver }.CreateCompressor().Factorize(w);

    // Textbook Cholesky of H + λ·mean(diag)·I, row by row in float64.
    private static double[] ReferenceCholesky(double[] h, int n, double dampening)
    {
        double mean = Enumerable.Range(0, n).Average(i => h[i * n + i]);
        double[] l = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double sum = h[i * n + j] + (i == j ? dampening * mean : 0);
                for (int k = 0; k < j; k++)
                {
                    sum -= l[i * n + k] * l[j * n + k];
                }

                l[i * n + j] = i == j ? Math.Sqrt(sum) : sum / l[j * n + j];
            }
        }

        return l;
    }
}
