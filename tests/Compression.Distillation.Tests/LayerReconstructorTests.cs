using Compression.Calibration;
using Compression.LowRank;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using Xunit.Abstractions;

namespace Compression.Distillation.Tests;

/// <summary>The fit's maths on test-local representations whose optimum has a closed form (float64 references).</summary>
public class LayerReconstructorTests(ITestOutputHelper output)
{
    private static readonly LayerReconstructionOptions Exact = new()
    {
        MaxIterations = 2000, RelativeTolerance = 0, Dampening = 0, KeepInnerUnlessImproved = false,
    };

    [Fact]
    public void Fit_PerChannelScales_EqualClosedFormOptimum()
    {
        const int rows = 24, columns = 64;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 11);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 256, seed: 12);
        ScaledCodesTensor rtn = LocalTunableTensors.RoundToNearest(weight, bits: 3, groupSize: columns);
        var context = CompressionContext.Default with { InputHessian = hessian };

        LayerReconstructionResult fit = LayerReconstructor.Fit(weight, rtn, context, Exact);

        float[] fitted = ((ScaledCodesTensor)fit.Tensor).Scales;
        var codes = new double[rows][];
        for (int r = 0; r < rows; r++)
        {
            codes[r] = Enumerable.Range(0, columns).Select(j => (double)rtn.Codes[r * columns + j]).ToArray();
        }

        output.WriteLine(RowOptima.Assert(weight, hessian, fit, rows, r => codes[r], r => [fitted[r]], "scale"));
    }

    [Fact]
    public void Fit_MaskedValues_EqualMaskedLeastSquaresOptimum()
    {
        const int rows = 12, columns = 48, kept = columns / 2;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 21);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 384, seed: 22);
        MaskedValuesTensor pruned = MaskedValuesTensor.PruneHalfPerRow(weight);
        var context = CompressionContext.Default with { InputHessian = hessian };

        LayerReconstructionResult fit = LayerReconstructor.Fit(weight, pruned, context, Exact);

        float[] fitted = new float[pruned.TunableParameterCount];
        ((ITunableTensor)fit.Tensor).GetTunableParameters(fitted);
        // Row r's basis: the unit vectors of its kept columns; the optimum solves H_SS·v = H_S,:·w_rᵀ (SparseGPT's target).
        double[][] Basis(int r) => pruned.Positions.Skip(r * kept).Take(kept).Select(p =>
        {
            var e = new double[columns];
            e[p - r * columns] = 1;
            return e;
        }).ToArray();

        output.WriteLine(RowOptima.AssertMany(weight, hessian, fit, rows, Basis, r => fitted.Skip(r * kept).Take(kept).ToArray(), "kept value"));
    }

    [Fact]
    public void Fit_LowRankFromPlainSvd_ReachesWhitenedOptimum()
    {
        const int rows = 32, columns = 40, rank = 6;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 31);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 320, seed: 32);
        var svd = (LowRankTensor)new LowRankOptions { Rank = RankRule.Fixed(rank) }.CreateCompressor().Compress(weight, CompressionContext.Default);
        float[] factors = [.. svd.Left.Span.ToArray(), .. svd.Right.Span.ToArray()];
        var start = new FactorTensor(rows, columns, rank, factors);
        var context = CompressionContext.Default with { InputHessian = hessian };

        LayerReconstructionResult fit = LayerReconstructor.Fit(weight, start, context, Exact with { MaxIterations = 3000 });

        // SVD-LLM's optimum: with H = L·Lᵀ, E* = Σ_{i>k} σ_i(W·L)² / ‖W·L‖²_F (Eckart–Young in the whitened space).
        double[] h = hessian.GetHessian();
        double[] l = Float64Reference.CholeskyLower(h, columns);
        var wl = new double[rows * columns];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < columns; j++)
            {
                double sum = 0;
                for (int k = j; k < columns; k++)
                {
                    sum += weight[r, k] * l[k * columns + j];
                }

                wl[r * columns + j] = sum;
            }
        }

        double[] sigma = SingularValueDecomposition.Exact(wl, rows, columns).SingularValues;
        double total = sigma.Sum(x => x * x), optimum = sigma.Skip(rank).Sum(x => x * x) / total;
        double reference = Float64Reference.RelativeError(weight.Span, fit.Tensor.Decompress().Span, h, columns);

        output.WriteLine($"plain SVD {fit.InitialError:E4} → fitted {fit.FinalError:E4}; whitened optimum {optimum:E4}; {fit.Iterations} iterations, {fit.Stop}");
        Assert.True(fit.InitialError > 1.2 * optimum, $"plain SVD {fit.InitialError} vs whitened optimum {optimum}");
        // Weighted low-rank approximation with a positive definite weight has no spurious local minima (it is plain
        // Eckart–Young after whitening), so L-BFGS should close the gap to the float32 resolution of the factors.
        Assert.True(fit.FinalError <= optimum * (1 + 1e-4), $"fitted {fit.FinalError} vs optimum {optimum} (start {fit.InitialError})");
        Assert.True(fit.FinalError >= optimum * (1 - 1e-6), $"fitted {fit.FinalError} below the optimum {optimum}: the objective is wrong");
        // The reported error is the float64 objective: equal to the triple-loop reference to rounding of the sums.
        Assert.Equal(reference, fit.FinalError, 1e-9);
    }

    [Fact]
    public void Fit_ReportedErrors_EqualFloat64ReferenceWithDampening()
    {
        const int rows = 16, columns = 32;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 41);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 64, seed: 42);
        ScaledCodesTensor rtn = LocalTunableTensors.RoundToNearest(weight, bits: 4, groupSize: 8);
        var context = CompressionContext.Default with { InputHessian = hessian };
        var options = LayerReconstructionOptions.Default with { Dampening = 0.1 };

        LayerReconstructionResult fit = LayerReconstructor.Fit(weight, rtn, context, options);

        double[] h = Float64Reference.DampenedHessian(hessian, 0.1);
        // Both sides sum the same float64 products in different orders: agreement to ~1e-13 relative; 1e-10 is ample.
        Assert.Equal(Float64Reference.RelativeError(weight.Span, rtn.Decompress().Span, h, columns), fit.InitialError, 1e-10);
        Assert.Equal(Float64Reference.RelativeError(weight.Span, fit.Tensor.Decompress().Span, h, columns), fit.FinalError, 1e-10);
        Assert.Equal(fit.StoredError, fit.FinalError);
        Assert.False(fit.KeptInner);
        Assert.True(fit.FinalError < 0.9 * fit.InitialError, $"{fit.InitialError} → {fit.FinalError}");
    }

    [Fact]
    public void Fit_ObjectiveNeverIncreases_AcrossIterationsShapesAndRepresentations()
    {
        // Deterministic fits: the run capped at k iterations is the first k iterations of a longer run, so the errors
        // at k = 1, 2, … trace the optimiser's path; each must be at most the previous one.
        Prop.ForAll(
            Gen.Choose(2, 12).Zip(Gen.Choose(4, 24)).Zip(Gen.Choose(0, 2).Zip(Gen.Choose(1, 100_000))).ToArbitrary(),
            input =>
            {
                ((int rows, int halfColumns), (int kind, int seed)) = input;
                int columns = 2 * halfColumns;
                DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed);
                HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: columns / 2 + 4, seed: seed + 7);
                CompressedTensor start = kind switch
                {
                    0 => LocalTunableTensors.RoundToNearest(weight, bits: 3, groupSize: 8),
                    1 => MaskedValuesTensor.PruneHalfPerRow(weight),
                    _ => StartFactors(weight, Math.Max(1, Math.Min(rows, columns) / 3)),
                };
                var context = CompressionContext.Default with { InputHessian = hessian };
                double previous = double.PositiveInfinity;
                for (int k = 1; k <= 6; k++)
                {
                    LayerReconstructionResult fit = LayerReconstructor.Fit(weight, start, context, Exact with { MaxIterations = k });
                    if (!(fit.FittedError <= previous && fit.FittedError <= fit.InitialError))
                    {
                        return false.Label($"k = {k}: {fit.FittedError} after {previous}, start {fit.InitialError}");
                    }

                    previous = fit.FittedError;
                }

                return true.Label("monotone");
            }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Fit_NoImprovementAfterRounding_KeepsInnerResult()
    {
        // The weight already is a scaled copy of its codes: RTN is exact, E = 0, nothing can improve.
        const int rows = 4, columns = 16;
        var values = new float[rows * columns];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (i % 15 - 7) * 0.25f;
        }

        var weight = new DenseTensor(values, rows, columns);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 32, seed: 51);
        ScaledCodesTensor rtn = LocalTunableTensors.RoundToNearest(weight, bits: 4, groupSize: columns);
        var context = CompressionContext.Default with { InputHessian = hessian };

        LayerReconstructionResult fit = LayerReconstructor.Fit(weight, rtn, context);

        Assert.Equal(0, fit.InitialError);
        Assert.True(fit.KeptInner);
        Assert.Same(rtn, fit.Tensor);
        Assert.Equal(LayerReconstructionStop.Converged, fit.Stop);
    }

    [Fact]
    public void Fit_RepresentationRefusesFittedValues_KeepsInnerResult()
    {
        DenseTensor weight = RandomData.GaussianMatrix(8, 32, seed: 56);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(32, samples: 64, seed: 57);
        ScaledCodesTensor refusing = LocalTunableTensors.RoundToNearest(weight, bits: 3, groupSize: 16).Refusing();
        var context = CompressionContext.Default with { InputHessian = hessian };

        LayerReconstructionResult fit = LayerReconstructor.Fit(weight, refusing, context, LayerReconstructionOptions.Default with { KeepInnerUnlessImproved = false });

        Assert.Same(refusing, fit.Tensor);
        Assert.True(fit.KeptInner);
        Assert.True(double.IsNaN(fit.StoredError));
        Assert.Equal(fit.InitialError, fit.FinalError);
        Assert.True(fit.FittedError < fit.InitialError, $"{fit.InitialError} → {fit.FittedError}");
    }

    [Fact]
    public void Fit_CancelledFromProgressCallback_Throws()
    {
        using var source = new CancellationTokenSource();
        int reports = 0;
        var progress = new SynchronousProgress<CompressionProgress>(p =>
        {
            Assert.Equal("reconstruct", p.Stage);
            if (++reports == 3)
            {
                source.Cancel();
            }
        });
        (DenseTensor weight, CompressedTensor start, HessianAccumulator hessian) = LowRankProblem(61);
        var context = CompressionContext.Default with { InputHessian = hessian, Progress = progress, CancellationToken = source.Token };

        Assert.Throws<OperationCanceledException>(() => LayerReconstructor.Fit(weight, start, context, Exact));
        Assert.Equal(3, reports);
    }

    [Fact]
    public void Fit_CancelledFromDedicatedThread_Throws()
    {
        using var source = new CancellationTokenSource();
        using var started = new ManualResetEventSlim();
        using var cancelled = new ManualResetEventSlim();
        var canceller = new Thread(() =>
        {
            started.Wait();
            source.Cancel();
            cancelled.Set();
        });
        canceller.Start();
        // The first progress report hands over to the other thread and waits until it has cancelled, so the fit is
        // mid-run when the token fires whatever the scheduling.
        var progress = new SynchronousProgress<CompressionProgress>(_ =>
        {
            started.Set();
            cancelled.Wait();
        });
        (DenseTensor weight, CompressedTensor start, HessianAccumulator hessian) = LowRankProblem(62);
        var context = CompressionContext.Default with { InputHessian = hessian, Progress = progress, CancellationToken = source.Token };

        Assert.Throws<OperationCanceledException>(() => LayerReconstructor.Fit(weight, start, context, Exact));
        canceller.Join();
    }

    [Fact]
    public void Fit_BadArguments_ThrowArgumentExceptionNamingTheProblem()
    {
        DenseTensor weight = RandomData.GaussianMatrix(6, 16, seed: 71);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(16, samples: 32, seed: 72);
        ScaledCodesTensor rtn = LocalTunableTensors.RoundToNearest(weight, bits: 4, groupSize: 8);
        var context = CompressionContext.Default with { InputHessian = hessian };

        var noHessian = Assert.Throws<ArgumentException>(() => LayerReconstructor.Fit(weight, rtn, CompressionContext.Default));
        Assert.Equal("context", noHessian.ParamName);
        Assert.Contains("InputHessian", noHessian.Message, StringComparison.Ordinal);

        var wide = Assert.Throws<ArgumentException>(() =>
            LayerReconstructor.Fit(weight, rtn, context with { InputHessian = RandomData.CorrelatedHessian(20, 32, 73) }));
        Assert.Contains("20×20", wide.Message, StringComparison.Ordinal);
        Assert.Contains("16 columns", wide.Message, StringComparison.Ordinal);

        var empty = Assert.Throws<ArgumentException>(() => LayerReconstructor.Fit(weight, rtn, context with { InputHessian = new HessianAccumulator(16) }));
        Assert.Contains("no samples", empty.Message, StringComparison.Ordinal);

        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            DenseTensor poisoned = weight.Clone();
            poisoned[4, 9] = bad;
            var nonFinite = Assert.Throws<ArgumentException>(() => LayerReconstructor.Fit(poisoned, rtn, context));
            Assert.Equal("weight", nonFinite.ParamName);
            Assert.Contains("(4, 9)", nonFinite.Message, StringComparison.Ordinal);
        }

        var shape = Assert.Throws<ArgumentException>(() => LayerReconstructor.Fit(RandomData.GaussianMatrix(5, 16, 74), rtn, context));
        Assert.Contains("5×16", shape.Message, StringComparison.Ordinal);
        Assert.Contains("6×16", shape.Message, StringComparison.Ordinal);

        var opaque = Assert.Throws<ArgumentException>(() => LayerReconstructor.Fit(weight, new OpaqueTensor(weight), context));
        Assert.Equal("compressed", opaque.ParamName);
        Assert.Contains("'test-opaque'", opaque.Message, StringComparison.Ordinal);
        Assert.Contains("no continuous parameters", opaque.Message, StringComparison.Ordinal);

        var nothing = Assert.Throws<ArgumentException>(() => LayerReconstructor.Fit(weight, new EmptyTunableTensor(weight), context));
        Assert.Contains("'test-empty'", nothing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_OutOfRange_ThrowNamingTheProperty()
    {
        LayerReconstructionOptions o = LayerReconstructionOptions.Default;
        Assert.Equal("MaxIterations", Assert.Throws<ArgumentOutOfRangeException>(() => o with { MaxIterations = 0 }).ParamName);
        Assert.Equal("MaxIterations", Assert.Throws<ArgumentOutOfRangeException>(() => o with { MaxIterations = 100_001 }).ParamName);
        Assert.Equal("RelativeTolerance", Assert.Throws<ArgumentOutOfRangeException>(() => o with { RelativeTolerance = -1e-9 }).ParamName);
        Assert.Equal("RelativeTolerance", Assert.Throws<ArgumentOutOfRangeException>(() => o with { RelativeTolerance = 1 }).ParamName);
        Assert.Equal("RelativeTolerance", Assert.Throws<ArgumentOutOfRangeException>(() => o with { RelativeTolerance = double.NaN }).ParamName);
        Assert.Equal("History", Assert.Throws<ArgumentOutOfRangeException>(() => o with { History = 0 }).ParamName);
        Assert.Equal("History", Assert.Throws<ArgumentOutOfRangeException>(() => o with { History = 101 }).ParamName);
        Assert.Equal("Dampening", Assert.Throws<ArgumentOutOfRangeException>(() => o with { Dampening = -0.01 }).ParamName);
        Assert.Equal("Dampening", Assert.Throws<ArgumentOutOfRangeException>(() => o with { Dampening = 1.5 }).ParamName);
        Assert.Equal("Dampening", Assert.Throws<ArgumentOutOfRangeException>(() => o with { Dampening = double.NaN }).ParamName);
        LayerReconstructionOptions edge = o with { MaxIterations = 1, RelativeTolerance = 0, History = 100, Dampening = 0 };
        Assert.Equal((1, 0.0, 100, 0.0), (edge.MaxIterations, edge.RelativeTolerance, edge.History, edge.Dampening));
        Assert.Equal((200, 1e-6, 10, 0.01, true), (o.MaxIterations, o.RelativeTolerance, o.History, o.Dampening, o.KeepInnerUnlessImproved));
    }

    private static FactorTensor StartFactors(DenseTensor weight, int rank)
    {
        var svd = (LowRankTensor)new LowRankOptions { Rank = RankRule.Fixed(rank) }.CreateCompressor().Compress(weight, CompressionContext.Default);
        return new FactorTensor(weight.Rows, weight.Columns, rank, [.. svd.Left.Span.ToArray(), .. svd.Right.Span.ToArray()]);
    }

    private static (DenseTensor, CompressedTensor, HessianAccumulator) LowRankProblem(int seed)
    {
        DenseTensor weight = RandomData.GaussianMatrix(16, 24, seed);
        return (weight, StartFactors(weight, 4), RandomData.CorrelatedHessian(24, samples: 96, seed: seed + 1));
    }
}
