using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Compression.Quantization.Tests;

public class GptqTests(ITestOutputHelper output)
{
    public static TheoryData<string, bool, bool> ReferenceCases()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (string scheme in Schemes.Keys)
        {
            data.Add(scheme, false, false);
            data.Add(scheme, true, false);
            data.Add(scheme, true, true);
        }

        return data;
    }

    private static readonly Dictionary<string, (RtnOptions Options, int Rows, int Columns, int BlockSize)> Schemes = new()
    {
        ["int4-g128-sym"] = (RtnOptions.W4Group128, 32, 256, 128),
        ["int8-per-channel"] = (RtnOptions.W8PerChannel, 32, 96, 32),
        ["int4-g32-asym"] = (new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), Symmetric = false }, 32, 128, 48),
        ["fp8-per-channel"] = (RtnOptions.Fp8PerChannel, 32, 96, 128),
        ["fp4-g32"] = (new RtnOptions { Format = NumberFormat.Fp4E2M1, Granularity = Granularity.PerGroup(32) }, 32, 128, 64),
        ["mxfp4"] = (RtnOptions.Mxfp4, 32, 128, 128),
        ["nvfp4"] = (RtnOptions.Nvfp4, 32, 128, 40),
        ["int4-g48-tail"] = (new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(48) }, 16, 128, 128),
        ["nvfp4-scale-search"] = (RtnOptions.Nvfp4 with { Clipping = ClippingSearch.Default with { Grid = 20 } }, 16, 128, 64),
        ["mxfp4-scale-search"] = (RtnOptions.Mxfp4 with { Clipping = ClippingSearch.Default with { Grid = 20 } }, 16, 128, 64),
        ["ternary-absmean-g64"] = (new RtnOptions { Format = NumberFormat.TernaryAbsMean, Granularity = Granularity.PerGroup(64) }, 32, 128, 64),
        ["ternary-twn-per-channel"] = (new RtnOptions { Format = NumberFormat.TernaryThreshold, Granularity = Granularity.PerChannel }, 32, 96, 32),
    };

    [Theory]
    [MemberData(nameof(ReferenceCases))]
    public void Gptq_MatchesThePlainFloat64Reference(string scheme, bool actOrder, bool staticGroups)
    {
        (RtnOptions rtn, int rows, int columns, int blockSize) = Schemes[scheme];
        var options = new GptqOptions { Quantization = rtn, ActOrder = actOrder, StaticGroups = staticGroups, BlockSize = blockSize };
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: columns + rows, standardDeviation: 0.05f);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 2 * columns, seed: 7);
        double[] h = hessian.GetHessian();

        GptqTensor fast = new GptqQuantizer(options).Quantize(w, CompressionContext.Default with { InputHessian = hessian });
        GptqReference.Result reference = GptqReference.Run(w, h, options);

        byte[] storedCodes = fast.Quantized.UnpackCodes();
        var codes = new byte[rows * columns];
        for (int r = 0; r < rows; r++)
        {
            for (int k = 0; k < columns; k++)
            {
                codes[r * columns + fast.Permutation[k]] = storedCodes[r * columns + k];
            }
        }

        double equal = codes.Zip(reference.CodesOriginalOrder).Count(p => p.First == p.Second) / (double)codes.Length;
        double relative = Math.Abs(fast.Report!.Objective - reference.Objective) / reference.Objective;
        output.WriteLine($"{scheme} act={actOrder} static={staticGroups}: objective {fast.Report.Objective:G6} vs {reference.Objective:G6} " +
                         $"(relative {relative:E2}), codes equal {equal:P3}");
        // The fast path sweeps float32 weights (as the reference implementation does) and applies updates in another
        // order; a weight within float32 rounding of a decision boundary may round the other way, which moves later
        // errors by a fraction of a step. Such flips are rare and change the objective by far less than 1e-4.
        Assert.True(equal >= 0.995, $"only {equal:P2} of codes equal");
        Assert.True(relative <= 1e-4, $"objective differs by {relative:E2}");
        Assert.Equal(reference.Order, fast.Report.ProcessingOrder);
        // The reported objective is what the reconstruction achieves.
        double direct = GptqReference.Objective(w, fast.Decompress(), h);
        Assert.Equal(direct, fast.Report.Objective, direct * 1e-9);
    }

    [Fact]
    public void Gptq_TotalLossEqualsTheDampedQuadraticForm()
    {
        // Σ e_j² = δᵀ(H + λI)δ per row since δ = e·U and UᵀU = (H + λI)⁻¹; float32 sweeps keep it to ~1e-4.
        DenseTensor w = RandomData.GaussianMatrix(16, 64, seed: 3);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(64, 128, seed: 4);
        GptqTensor q = new GptqQuantizer(GptqOptions.W8PerChannel with { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(16) } })
            .Quantize(w, CompressionContext.Default with { InputHessian = hessian });
        double[] damped = hessian.GetHessian();
        for (int j = 0; j < 64; j++)
        {
            damped[j * 64 + j] += q.Report!.Dampening;
        }

        double expected = GptqReference.Objective(w, q.Decompress(), damped);
        Assert.Equal(expected, q.Report!.TotalLoss, expected * 1e-3);
    }

    [Fact]
    public void Gptq_WithIdentityHessian_EqualsRoundToNearest_FromAnAccumulator()
    {
        // Scaled identity rows: XᵀX = s²·I, so H is a multiple of I and GPTQ has no correlations to exploit.
        const int columns = 64;
        var accumulator = new HessianAccumulator(columns);
        var x = new float[columns * columns];
        for (int j = 0; j < columns; j++)
        {
            x[j * columns + j] = 3f;
        }

        accumulator.Add(x, columns);
        DenseTensor w = RandomData.GaussianMatrix(16, columns, seed: 11);
        foreach (RtnOptions rtn in new[] { RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(16) }, RtnOptions.Mxfp4, RtnOptions.Nvfp4, RtnOptions.Fp8PerChannel })
        {
            GptqTensor q = new GptqQuantizer(new GptqOptions { Quantization = rtn, ActOrder = true })
                .Quantize(w, CompressionContext.Default with { InputHessian = accumulator });
            QuantizedTensor rtnResult = rtn.CreateCompressor().Quantize(w);
            Assert.True(q.IsIdentityOrder);
            Assert.Equal(rtnResult.UnpackCodes(), q.Quantized.UnpackCodes());
            Assert.Equal(rtnResult.Scales.ToArray(), q.Quantized.Scales.ToArray());
            Assert.Equal(rtnResult.GlobalScale, q.Quantized.GlobalScale);
        }
    }

    [Fact]
    public void Gptq_ActOrder_DecompressEqualsDequantizingWithGroupIndex()
    {
        const int rows = 16, columns = 96;
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: 5);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, 192, seed: 6, outliers: 5);
        var rtn = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), Symmetric = false };
        GptqTensor q = new GptqQuantizer(new GptqOptions { Quantization = rtn, ActOrder = true })
            .Quantize(w, CompressionContext.Default with { InputHessian = hessian });
        Assert.False(q.IsIdentityOrder);

        // g_idx must be non-contiguous in the original order with act-order and dynamic groups.
        Assert.Contains(Enumerable.Range(1, columns - 1), j => q.GroupIndex[j] < q.GroupIndex[j - 1]);
        byte[] stored = q.Quantized.UnpackCodes();
        var position = new int[columns];
        for (int k = 0; k < columns; k++)
        {
            position[q.Permutation[k]] = k;
        }

        DenseTensor dq = q.Decompress();
        var format = (GroupedFormat)rtn.Format;
        Span<float> value = stackalloc float[1];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < columns; j++)
            {
                int group = r * 3 + q.GroupIndex[j];
                var p = new SegmentParameters(q.Quantized.Scales.Span[group], q.Quantized.ZeroPoints.Span[group], 1f, 0);
                format.DecodeSegment([stored[r * columns + position[j]]], p, rtn, value);
                Assert.Equal(value[0], dq[r, j]);
            }
        }
    }

    [Fact]
    public void Gptq_GroupScales_AreTheFormatsChoiceForTheGroupsValues()
    {
        const int rows = 8, columns = 64;
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: 21);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, 128, seed: 22);
        var rtn = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(16), ScaleStorage = ScaleEncoding.Float16 };
        var format = (GroupedFormat)rtn.Format;
        var context = CompressionContext.Default with { InputHessian = hessian };

        // Static groups: every scale from the original weight's group, exactly.
        GptqTensor stat = new GptqQuantizer(new GptqOptions { Quantization = rtn, ActOrder = true, StaticGroups = true }).Quantize(w, context);
        Assert.True(stat.IsIdentityOrder);
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < 4; g++)
            {
                Assert.Equal(format.ChooseSegment(w.Row(r).Slice(g * 16, 16), 1f, rtn).Scale, stat.Quantized.Scales.Span[r * 4 + g]);
            }
        }

        // Dynamic groups: the first group sees the original values (exact); later groups the error-updated values,
        // which the float64 reference reproduces to float32 rounding.
        var options = new GptqOptions { Quantization = rtn, BlockSize = 32 };
        GptqTensor dyn = new GptqQuantizer(options).Quantize(w, context);
        GptqReference.Result reference = GptqReference.Run(w, hessian.GetHessian(), options);
        for (int r = 0; r < rows; r++)
        {
            Assert.Equal(format.ChooseSegment(w.Row(r).Slice(0, 16), 1f, rtn).Scale, dyn.Quantized.Scales.Span[r * 4]);
            for (int g = 1; g < 4; g++)
            {
                float expected = reference.Scales[r * 4 + g];
                Assert.Equal(expected, dyn.Quantized.Scales.Span[r * 4 + g], expected * 2e-3f);   // FP16 scales: one ulp is 1e-3
            }
        }
    }

    [Fact]
    public void Gptq_RoundTripsThroughTheSerializer()
    {
        DenseTensor w = RandomData.GaussianMatrix(16, 64, seed: 31);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(64, 128, seed: 32);
        GptqTensor q = new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.Nvfp4, ActOrder = true })
            .Quantize(w, CompressionContext.Default with { InputHessian = hessian });
        GptqTensor back = GptqData.SerializeRoundTrip(q);
        Assert.Equal(q.Permutation, back.Permutation);
        Assert.Equal(q.GroupIndex, back.GroupIndex);
        Assert.Equal(q.StorageBits, back.StorageBits);
        Assert.True(back.Decompress().BitwiseEquals(q.Decompress()));
        Assert.Null(back.Report);
    }

    [Fact]
    public void Gptq_ReportsProgressPerBlock_AndHonoursCancellation()
    {
        DenseTensor w = RandomData.GaussianMatrix(8, 64, seed: 41);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(64, 128, seed: 42);
        var reports = new List<CompressionProgress>();
        var progress = new SynchronousProgress(reports.Add);
        new GptqQuantizer(GptqOptions.W8PerChannel with { BlockSize = 16 })
            .Quantize(w, CompressionContext.Default with { InputHessian = hessian, Progress = progress, LayerName = "l0" });
        Assert.Equal([1L, 2, 3, 4], reports.Select(p => p.Completed));
        Assert.All(reports, p => Assert.Equal(4, p.Total));

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => new GptqQuantizer(GptqOptions.W8PerChannel)
            .Quantize(w, CompressionContext.Default with { InputHessian = hessian, CancellationToken = cancelled.Token }));
    }

    [Fact]
    public void Gptq_RejectsAHessianOfTheWrongSize()
    {
        DenseTensor w = RandomData.GaussianMatrix(4, 32, seed: 1);
        HessianAccumulator wrong = RandomData.CorrelatedHessian(33, 64, seed: 2);
        var e = Assert.Throws<ArgumentException>(() => new GptqQuantizer(GptqOptions.W8PerChannel).Quantize(w, CompressionContext.Default with { InputHessian = wrong }));
        Assert.Equal("context", e.ParamName);
        var e2 = Assert.Throws<ArgumentException>(() => new GptqQuantizer(GptqOptions.W8PerChannel).Quantize(w, new double[31 * 31]));
        Assert.Equal("hessian", e2.ParamName);
        Assert.Throws<ArgumentException>(() => new GptqQuantizer(GptqOptions.W8PerChannel).Quantize(w, CompressionContext.Default));
    }

    [Fact]
    public void Gptq_RejectsNaN_InTheHessianOrTheWeight()
    {
        DenseTensor w = RandomData.GaussianMatrix(4, 32, seed: 1);
        double[] h = RandomData.CorrelatedHessian(32, 64, seed: 2).GetHessian();
        h[5 * 32 + 7] = double.NaN;
        var e = Assert.Throws<ArgumentException>(() => new GptqQuantizer(GptqOptions.W8PerChannel).Quantize(w, h));
        Assert.Equal("hessian", e.ParamName);
        Assert.Contains("NaN", e.Message, StringComparison.Ordinal);

        // Activations too large for a float32 accumulator overflow to ∞ in H.
        var overflowing = new HessianAccumulator(32, new HessianAccumulatorOptions { Precision = AccumulationPrecision.Single });
        overflowing.Add(Enumerable.Repeat(1e20f, 64).ToArray(), 2);
        var e2 = Assert.Throws<ArgumentException>(() => new GptqQuantizer(GptqOptions.W8PerChannel).Quantize(w, CompressionContext.Default with { InputHessian = overflowing }));
        Assert.Equal("context", e2.ParamName);

        DenseTensor bad = w.Clone();
        bad[2, 3] = float.NaN;
        var e3 = Assert.Throws<ArgumentException>(() => new GptqQuantizer(GptqOptions.W8PerChannel)
            .Quantize(bad, CompressionContext.Default with { InputHessian = RandomData.CorrelatedHessian(32, 64, seed: 2) }));
        Assert.Equal("weight", e3.ParamName);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gptq_DeadInputs_AreZeroed_AndTheObjectiveIsWhatTheResultAchieves(bool actOrder)
    {
        // Inputs 3, 17 and 40 never fire: their rows and columns of H are zero.
        const int Columns = 64;
        DenseTensor x = RandomData.GaussianMatrix(200, Columns, seed: 4);
        for (int r = 0; r < x.Rows; r++)
        {
            x[r, 3] = x[r, 17] = x[r, 40] = 0;
        }

        var hessian = new HessianAccumulator(Columns);
        hessian.Add(x);
        DenseTensor w = RandomData.GaussianMatrix(8, Columns, seed: 5);
        var options = new GptqOptions { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(16) }, ActOrder = actOrder };
        GptqTensor q = new GptqQuantizer(options).Quantize(w, CompressionContext.Default with { InputHessian = hessian });
        Assert.Equal(3, q.Report!.DeadColumns);
        DenseTensor result = q.Decompress();
        for (int r = 0; r < w.Rows; r++)
        {
            Assert.Equal(0f, result[r, 3]);
            Assert.Equal(0f, result[r, 17]);
            Assert.Equal(0f, result[r, 40]);
        }

        double direct = GptqReference.Objective(w, result, hessian.GetHessian());
        Assert.Equal(direct, q.Report.Objective, direct * 1e-9);
        Assert.Equal(GptqReference.Run(w, hessian.GetHessian(), options).Objective, q.Report.Objective, direct * 1e-4);
    }

    [Fact]
    public void Gptq_AllZeroInputs_GiveAnAllZeroResult()
    {
        var zeros = new HessianAccumulator(32);
        zeros.Add(new float[64 * 32], 64);
        DenseTensor w = RandomData.GaussianMatrix(8, 32, seed: 3);
        GptqTensor q = new GptqQuantizer(GptqOptions.W4Group128 with { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(16) }, ActOrder = true })
            .Quantize(w, CompressionContext.Default with { InputHessian = zeros });
        Assert.All(q.Decompress().Span.ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(32, q.Report!.DeadColumns);
        Assert.Equal(0, q.Report.Objective);
        Assert.Equal(1, q.Report.DampeningAttempts);
    }

    [Fact]
    public void Gptq_RankDeficientHessian_SucceedsThroughDampening()
    {
        // 16 samples of 64 features: H has rank 16.
        HessianAccumulator hessian = RandomData.CorrelatedHessian(64, 16, seed: 8, outliers: 0);
        DenseTensor w = RandomData.GaussianMatrix(8, 64, seed: 9);
        GptqTensor q = new GptqQuantizer(GptqOptions.W8PerChannel).Quantize(w, CompressionContext.Default with { InputHessian = hessian });
        Assert.True(double.IsFinite(q.Report!.Objective));
        Assert.True(q.Report.Objective <= GptqReference.Objective(w, RtnOptions.W8PerChannel.CreateCompressor().Quantize(w).Decompress(), hessian.GetHessian()));
    }

    [Fact]
    public void Gptq_IndefiniteHessian_RaisesDampeningAndLogsIt()
    {
        // H = I − 1.05·uuᵀ has eigenvalue −0.05: λ = 1% of the mean diagonal fails, 10% succeeds.
        const int n = 32;
        double[] h = IdentityMinusRankOne(n, 1.05);
        var logger = new ListLogger();
        GptqTensor q = new GptqQuantizer(GptqOptions.W8PerChannel)
            .Quantize(RandomData.GaussianMatrix(4, n, seed: 1), h, CompressionContext.Default with { Logger = logger });
        Assert.Equal(2, q.Report!.DampeningAttempts);
        Assert.Equal(0.1, q.Report.DampeningPercent, 1e-12);
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("Cholesky", StringComparison.Ordinal));
    }

    [Fact]
    public void Gptq_HessianBeyondRepair_ThrowsAfterTheBoundedRetries()
    {
        const int n = 32;
        double[] h = IdentityMinusRankOne(n, 2.0);   // eigenvalue −1: needs λ > 1, beyond 0.01 and 0.1 of the mean diagonal
        var logger = new ListLogger();
        var e = Assert.Throws<InvalidOperationException>(() => new GptqQuantizer(GptqOptions.W8PerChannel with { MaxDampeningAttempts = 2 })
            .Quantize(RandomData.GaussianMatrix(4, n, seed: 1), h, CompressionContext.Default with { Logger = logger }));
        Assert.Contains("not positive definite", e.Message, StringComparison.Ordinal);
        Assert.Contains("2 Cholesky attempts", e.Message, StringComparison.Ordinal);
        Assert.Single(logger.Entries);
    }

    [Fact]
    public void Gptq_GroupSizeNotDividingColumns_UsesATailGroup()
    {
        DenseTensor w = RandomData.GaussianMatrix(8, 100, seed: 12);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(100, 200, seed: 13);
        GptqTensor q = new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) }, ActOrder = true })
            .Quantize(w, CompressionContext.Default with { InputHessian = hessian });
        Assert.Equal(8 * 4, q.Quantized.Scales.Length);
        Assert.Equal(4, q.GroupIndex.Count(g => g == 3));   // the tail: 100 − 3·32 columns
    }

    [Fact]
    public void GptqOptions_RejectsWhatGptqCannotDo()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new GptqOptions { BlockSize = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new GptqOptions { DampeningPercent = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new GptqOptions { DampeningGrowth = 1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new GptqOptions { MaxDampeningAttempts = 0 });
        Assert.Throws<ArgumentNullException>(() => new GptqOptions { Quantization = null! });
        Assert.Throws<ArgumentException>(() => new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.Nf4 }));
        Assert.Throws<ArgumentException>(() => new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.Fp8Block128 }));
        Assert.Throws<ArgumentException>(() => new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.W8PerChannel with { Granularity = Granularity.PerTensor } }));
    }

    internal static double[] IdentityMinusRankOne(int n, double weight)
    {
        var h = new double[n * n];
        double u = 1 / Math.Sqrt(n);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                h[i * n + j] = (i == j ? 1 : 0) - weight * u * u;
            }
        }

        return h;
    }

    private sealed class SynchronousProgress(Action<CompressionProgress> report) : IProgress<CompressionProgress>
    {
        public void Report(CompressionProgress value) => report(value);
    }

    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));
    }
}
