using Compression.Calibration;
using Compression.Composition;
using Compression.LowRank;
using Compression.Pruning;
using Compression.Quantization;
using Compression.Safetensors;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using Xunit.Abstractions;

namespace Compression.Distillation.Tests;

/// <summary>The compressor on the families' real representations: structure kept, composition, a real weight.</summary>
public class ReconstructingCompressorTests(ITestOutputHelper output)
{
    private static readonly LayerReconstructionOptions Exact = new()
    {
        MaxIterations = 2000, RelativeTolerance = 0, Dampening = 0, KeepInnerUnlessImproved = false,
    };

    [Fact]
    public void Reconstruct_PerChannelFloat32Rtn_ScalesEqualClosedFormOptimum()
    {
        const int rows = 24, columns = 64;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 101);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 256, seed: 102);
        var rtn = new RoundToNearestQuantizer(new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerChannel });
        var context = CompressionContext.Default with { InputHessian = hessian };

        LayerReconstructionResult fit = new ReconstructingCompressor(rtn, Exact).Reconstruct(weight, context);

        var start = (QuantizedTensor)rtn.Compress(weight, context);
        float[] unscaled = start.UnscaledValues();
        float[] fitted = ((QuantizedTensor)fit.Tensor).Scales.ToArray();
        // g_r = the row's unscaled code values; s_r = (g_r·H·w_rᵀ) / (g_r·H·g_rᵀ).
        string summary = RowOptima.Assert(weight, hessian, fit, rows,
            r => unscaled.AsSpan(r * columns, columns).ToArray().Select(v => (double)v).ToArray(), r => [fitted[r]], "scale");
        output.WriteLine(summary);
    }

    [Fact]
    public void Reconstruct_GroupedRtn_KeepsCodesKindAndStorage()
    {
        const int rows = 16, columns = 96;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 111);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 192, seed: 112);
        var options = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), ScaleStorage = ScaleEncoding.Float16 };
        var context = CompressionContext.Default with { InputHessian = hessian };

        var inner = (QuantizedTensor)new RoundToNearestQuantizer(options).Compress(weight, context);
        LayerReconstructionResult fit = new ReconstructingCompressor(new RoundToNearestQuantizer(options)).Reconstruct(weight, context);

        var fitted = Assert.IsType<QuantizedTensor>(fit.Tensor);
        Assert.False(fit.KeptInner);
        Assert.Equal(inner.UnpackCodes(), fitted.UnpackCodes());
        Assert.Equal(inner.ZeroPoints.ToArray(), fitted.ZeroPoints.ToArray());
        Assert.Equal((inner.Kind, inner.StorageBits, inner.ScaleEncoding), (fitted.Kind, fitted.StorageBits, fitted.ScaleEncoding));
        Assert.All(fitted.Scales.ToArray(), s => Assert.Equal(s, (float)(Half)s));
        Assert.NotEqual(inner.Scales.ToArray(), fitted.Scales.ToArray());
        Assert.True(fit.StoredError < fit.InitialError, $"{fit.InitialError} → {fit.StoredError}");
    }

    [Fact]
    public void Reconstruct_PruneThenQuantize_KeepsMaskAndCodes()
    {
        const int rows = 16, columns = 64;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 121);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 128, seed: 122);
        var chained = new ChainedCompressor(
            new MagnitudePruner(new MagnitudePruningOptions { Sparsity = 0.5 }),
            new RoundToNearestQuantizer(new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(16) }));
        var context = CompressionContext.Default with { InputHessian = hessian };

        CompressedTensor inner = chained.Compress(weight, context);
        LayerReconstructionResult fit = new ReconstructingCompressor(chained).Reconstruct(weight, context);

        // The quantizer keeps the pruner's zeros as zero codes (its result carries no mask object of its own).
        SparsityMask mask = new MagnitudePruner(new MagnitudePruningOptions { Sparsity = 0.5 }).Prune(weight).Mask;
        Assert.Equal(((QuantizedTensor)inner).UnpackCodes(), ((QuantizedTensor)fit.Tensor).UnpackCodes());
        Assert.Equal((inner.Kind, inner.StorageBits), (fit.Tensor.Kind, fit.Tensor.StorageBits));
        Assert.Equal(inner.SparsityMask?.ToBytes(), fit.Tensor.SparsityMask?.ToBytes());
        float[] dense = fit.Tensor.Decompress().Span.ToArray();
        int pruned = 0;
        for (int i = 0; i < dense.Length; i++)
        {
            if (!mask.IsKept(i / columns, i % columns))
            {
                Assert.Equal(0f, dense[i]);
                pruned++;
            }
        }

        Assert.Equal(rows * columns / 2, pruned);
        Assert.True(fit.FinalError < fit.InitialError, $"{fit.InitialError} → {fit.FinalError}");
    }

    [Fact]
    public void Reconstruct_InsideResidual_FitsScalesBeforeTheCorrection()
    {
        const int rows = 24, columns = 48;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 131);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 192, seed: 132);
        var rtn = new RoundToNearestQuantizer(new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(16) });
        var lowRank = new LowRankOptions { Rank = RankRule.Fixed(4), Whitening = ActivationWhitening.Cholesky }.CreateCompressor();
        var composed = new ResidualCompressor(new ReconstructingCompressor(rtn), lowRank);
        var context = CompressionContext.Default with { InputHessian = hessian };

        Assert.Equal(CalibrationRequirements.InputHessian, composed.Requirements);
        var result = Assert.IsType<ResidualTensor>(composed.Compress(weight, context));
        var main = Assert.IsType<QuantizedTensor>(result.Main);

        var plainMain = (QuantizedTensor)rtn.Compress(weight, context);
        Assert.Equal(plainMain.UnpackCodes(), main.UnpackCodes());
        double[] h = Float64Reference.DampenedHessian(hessian, 0.01);
        double fittedMain = Float64Reference.RelativeError(weight.Span, main.Decompress().Span, h, columns);
        double plain = Float64Reference.RelativeError(weight.Span, plainMain.Decompress().Span, h, columns);
        Assert.True(fittedMain < plain, $"{plain} → {fittedMain}");
        double withCorrection = Float64Reference.RelativeError(weight.Span, result.Decompress().Span, h, columns);
        Assert.True(withCorrection < fittedMain, $"main {fittedMain}, with correction {withCorrection}");
    }

    [Fact]
    public void Reconstruct_MagnitudePruned_KeptValuesEqualMaskedLeastSquaresOptimum()
    {
        const int rows = 12, columns = 48;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 161);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 384, seed: 162);
        var pruner = new MagnitudePruner(new MagnitudePruningOptions { Sparsity = 0.5, Scope = PruningScope.PerRow });
        var context = CompressionContext.Default with { InputHessian = hessian };

        // Outlier inputs (×20, so ×400 in H) among the kept columns make H_SS ill-conditioned, and L-BFGS's convergence
        // on a quadratic slows with the condition number: with a history of 100 pairs this one needs about 2,300
        // iterations (under a millisecond each; about 10,000 with the default 10) to reach the float32 noise floor that
        // RowOptima checks against.
        LayerReconstructionResult fit = new ReconstructingCompressor(pruner, Exact with { MaxIterations = 20_000, History = 100 }).Reconstruct(weight, context);

        var inner = (PrunedTensor)pruner.Compress(weight, context);
        var fitted = Assert.IsType<PrunedTensor>(fit.Tensor);
        Assert.Equal(inner.Mask.ToBytes(), fitted.Mask.ToBytes());
        Assert.Equal((inner.Kind, inner.StorageBits), (fitted.Kind, fitted.StorageBits));
        float[] values = fitted.Values.ToArray();
        int[][] kept = Enumerable.Range(0, rows).Select(r => Enumerable.Range(0, columns).Where(j => inner.Mask.IsKept(r, j)).ToArray()).ToArray();
        int[] offsets = kept.Select(k => k.Length).Prepend(0).ToArray();
        for (int r = 1; r < offsets.Length; r++)
        {
            offsets[r] += offsets[r - 1];
        }

        // Row r's basis: the unit vectors of its kept columns; the optimum solves H_SS·v = H_S,:·w_rᵀ, the masked
        // least-squares solution SparseGPT's update aims at.
        string summary = RowOptima.AssertMany(weight, hessian, fit, rows,
            r => kept[r].Select(j =>
            {
                var e = new double[columns];
                e[j] = 1;
                return e;
            }).ToArray(),
            r => values.AsSpan(offsets[r], kept[r].Length).ToArray(), "kept value");
        output.WriteLine(summary);
    }

    [Fact]
    public void Reconstruct_PlainSvdFactors_ReachWhitenedOptimum()
    {
        const int rows = 32, columns = 40, rank = 6;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 171);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 320, seed: 172);
        var svd = new LowRankOptions { Rank = RankRule.Fixed(rank) }.CreateCompressor();
        var svdLlm = new LowRankOptions { Rank = RankRule.Fixed(rank), Whitening = ActivationWhitening.Cholesky, Dampening = 0 }.CreateCompressor();
        var context = CompressionContext.Default with { InputHessian = hessian };

        LayerReconstructionResult fit = new ReconstructingCompressor(svd, Exact with { MaxIterations = 3000 }).Reconstruct(weight, context);

        double[] h = hessian.GetHessian();
        double whitened = Float64Reference.RelativeError(weight.Span, svdLlm.Compress(weight, context).Decompress().Span, h, columns);
        var fitted = Assert.IsType<LowRankTensor>(fit.Tensor);
        Assert.Equal((rank, FactorPrecision.Float32), (fitted.Rank, fitted.Precision));
        output.WriteLine($"plain SVD {fit.InitialError:E4} → fitted {fit.FinalError:E4}; SVD-LLM {whitened:E4}; {fit.Iterations} iterations, {fit.Stop}");
        Assert.True(fit.InitialError > 1.2 * whitened, $"plain SVD {fit.InitialError} vs SVD-LLM {whitened}");
        // No spurious local minima after whitening (see LayerReconstructorTests): the fit should match SVD-LLM to the
        // float32 resolution of the factors.
        Assert.True(fit.FinalError <= whitened * (1 + 1e-4), $"fitted {fit.FinalError} vs SVD-LLM {whitened}");
    }

    [Fact]
    public void Reconstruct_GptqPlusLowRank_FitsScalesAndFactorsJointly()
    {
        const int rows = 32, columns = 64;
        DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed: 181);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 256, seed: 182);
        var gptq = new GptqQuantizer(new GptqOptions { Quantization = new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(16) } });
        var residual = new ResidualCompressor(gptq, new LowRankOptions { Rank = RankRule.Fixed(4), Whitening = ActivationWhitening.Cholesky }.CreateCompressor());
        var context = CompressionContext.Default with { InputHessian = hessian };

        var inner = (ResidualTensor)residual.Compress(weight, context);
        LayerReconstructionResult fit = new ReconstructingCompressor(residual).Reconstruct(weight, context);

        var fitted = Assert.IsType<ResidualTensor>(fit.Tensor);
        var innerMain = (GptqTensor)inner.Main;
        var fittedMain = Assert.IsType<GptqTensor>(fitted.Main);
        Assert.Equal(innerMain.Quantized.UnpackCodes(), fittedMain.Quantized.UnpackCodes());
        Assert.Equal(inner.StorageBits, fitted.StorageBits);
        Assert.Equal(rows * columns / 16 + 4 * (rows + columns), fit.ParameterCount);
        Assert.NotEqual(innerMain.Quantized.Scales.ToArray(), fittedMain.Quantized.Scales.ToArray());
        Assert.NotEqual(((LowRankTensor)inner.Correction).Left.Span.ToArray(), ((LowRankTensor)fitted.Correction).Left.Span.ToArray());
        output.WriteLine($"GPTQ INT3 g16 + SVD-LLM rank 4: E {fit.InitialError:E4} → {fit.FinalError:E4}");
        Assert.True(fit.FinalError < 0.95 * fit.InitialError, $"{fit.InitialError} → {fit.FinalError}");
    }

    [Fact]
    public void Reconstruct_RealInners_NeverRaiseTheObjectiveAndKeepStructure()
    {
        // Deterministic fits: capped at k = 1, 2, … iterations they trace one path, whose errors must never rise.
        Prop.ForAll(
            Gen.Choose(2, 10).Zip(Gen.Choose(1, 4)).Zip(Gen.Choose(0, 3).Zip(Gen.Choose(1, 100_000))).ToArbitrary(),
            input =>
            {
                ((int rows, int groups), (int kind, int seed)) = input;
                int columns = 8 * groups;
                DenseTensor weight = RandomData.GaussianMatrix(rows, columns, seed);
                HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: columns / 2 + 4, seed: seed + 3);
                ICompressor inner = kind switch
                {
                    0 => new RoundToNearestQuantizer(new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(8) }),
                    1 => new RoundToNearestQuantizer(new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(8), ScaleStorage = ScaleEncoding.BFloat16 }),
                    2 => new MagnitudePruner(new MagnitudePruningOptions { Sparsity = 0.5 }),
                    _ => new LowRankOptions { Rank = RankRule.Fixed(Math.Max(1, Math.Min(rows, columns) / 3)) }.CreateCompressor(),
                };
                var context = CompressionContext.Default with { InputHessian = hessian };
                CompressedTensor start = inner.Compress(weight, context);
                double previous = double.PositiveInfinity;
                for (int k = 1; k <= 5; k++)
                {
                    LayerReconstructionResult fit = new ReconstructingCompressor(inner, LayerReconstructionOptions.Default with { MaxIterations = k, RelativeTolerance = 0 })
                        .Reconstruct(weight, context);
                    bool structure = fit.Tensor.Kind == start.Kind && fit.Tensor.StorageBits == start.StorageBits
                        && (start is not QuantizedTensor q || q.UnpackCodes().AsSpan().SequenceEqual(((QuantizedTensor)fit.Tensor).UnpackCodes()))
                        && (start is not PrunedTensor p || p.Mask.ToBytes().AsSpan().SequenceEqual(((PrunedTensor)fit.Tensor).Mask.ToBytes()));
                    if (!(fit.FittedError <= previous && fit.FittedError <= fit.InitialError && fit.FinalError <= fit.InitialError && structure))
                    {
                        return false.Label($"kind {kind}, k = {k}: fitted {fit.FittedError} after {previous}, start {fit.InitialError}, final {fit.FinalError}, structure {structure}");
                    }

                    previous = fit.FittedError;
                }

                return true.Label("monotone");
            }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Reconstruct_RequirementsAndName_AddTheHessian()
    {
        var rtn = new RoundToNearestQuantizer(RtnOptions.W4Group128);
        var compressor = new ReconstructingCompressor(rtn);
        Assert.Equal(CalibrationRequirements.InputHessian, compressor.Requirements);
        Assert.Equal("rtn+reconstruct", compressor.Name);
        Assert.Same(LayerReconstructionOptions.Default, compressor.Options);
        Assert.Same(rtn, compressor.Inner);
        Assert.Throws<ArgumentNullException>(() => new ReconstructingCompressor(null!));
    }

    [Fact]
    public void Reconstruct_BadInput_ThrowsArgumentException()
    {
        DenseTensor weight = RandomData.GaussianMatrix(8, 32, seed: 141);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(32, samples: 64, seed: 142);
        var compressor = new ReconstructingCompressor(new RoundToNearestQuantizer(RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(16) }));
        var context = CompressionContext.Default with { InputHessian = hessian };

        var missing = Assert.Throws<ArgumentException>(() => compressor.Compress(weight, CompressionContext.Default));
        Assert.Contains("rtn+reconstruct needs the layer's input Hessian", missing.Message, StringComparison.Ordinal);

        var wide = Assert.Throws<ArgumentException>(() => compressor.Compress(weight, context with { InputHessian = RandomData.CorrelatedHessian(16, 32, 143) }));
        Assert.Contains("16×16", wide.Message, StringComparison.Ordinal);

        DenseTensor poisoned = weight.Clone();
        poisoned[3, 5] = float.NaN;
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => compressor.Compress(poisoned, context)).ParamName);

        // MXFP4's E8M0 scales are powers of two: the quantized tensor reports no continuous parameters.
        var mx = new ReconstructingCompressor(new RoundToNearestQuantizer(RtnOptions.Mxfp4));
        var notTunable = Assert.Throws<ArgumentException>(() => mx.Compress(weight, context));
        Assert.Contains("'quantized' tensor has no continuous parameters", notTunable.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reconstruct_RealWeight_LowersOutputErrorOnCalibrationAndHeldOutInputs()
    {
        // TinyStories-656K's first up_proj ([384, 128]) with correlated synthetic inputs: a fixed random mixing of
        // Gaussian features plus three ×10 outlier channels, the structure that makes H far from diagonal.
        DenseTensor weight;
        using (SafetensorsFile file = SafetensorsFile.Open(SharedData.File("tinystories-656k", "model.safetensors")))
        {
            weight = file.ReadDense("model.layers.0.mlp.up_proj.weight");
        }

        const int columns = 128, samples = 2048, heldOutSamples = 1024;
        float[] calibration = CorrelatedInputs(samples, columns, seed: 151);
        float[] heldOut = CorrelatedInputs(heldOutSamples, columns, seed: 152);
        double[] exactCalibration = Outputs(weight.Span, calibration, weight.Rows, columns);
        double[] exactHeldOut = Outputs(weight.Span, heldOut, weight.Rows, columns);
        var hessian = new HessianAccumulator(columns);
        hessian.Add(calibration, samples);
        var context = CompressionContext.Default with { InputHessian = hessian, LayerName = "model.layers.0.mlp.up_proj" };

        (string Name, ICompressor Inner, double MaxRatio)[] cases =
        [
            ("RTN INT3 g32", new RoundToNearestQuantizer(new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(32) }), 0.9),
            ("RTN INT2 g32", new RoundToNearestQuantizer(new RtnOptions { Format = NumberFormat.Int2, Granularity = Granularity.PerGroup(32) }), 0.9),
            ("RTN INT4 per-channel", new RoundToNearestQuantizer(new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerChannel }), 0.9),
            ("GPTQ INT3 g32", new GptqQuantizer(new GptqOptions { Quantization = new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(32) } }), 1.0),
            ("magnitude 50 %", new MagnitudePruner(new MagnitudePruningOptions { Sparsity = 0.5 }), 0.9),
            ("SVD rank 32", new LowRankOptions { Rank = RankRule.Fixed(32) }.CreateCompressor(), 0.9),
            ("GPTQ INT3 g32 + SVD-LLM rank 8 (joint)", new ResidualCompressor(
                new GptqQuantizer(new GptqOptions { Quantization = new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(32) } }),
                new LowRankOptions { Rank = RankRule.Fixed(8), Whitening = ActivationWhitening.Cholesky }.CreateCompressor()), 1.0),
        ];
        foreach ((string name, ICompressor inner, double maxRatio) in cases)
        {
            LayerReconstructionResult fit = new ReconstructingCompressor(inner).Reconstruct(weight, context);
            CompressedTensor start = inner.Compress(weight, context);
            double before = OutputError(exactCalibration, start, calibration), after = OutputError(exactCalibration, fit.Tensor, calibration);
            double beforeHeld = OutputError(exactHeldOut, start, heldOut), afterHeld = OutputError(exactHeldOut, fit.Tensor, heldOut);
            output.WriteLine(
                $"{name}: ‖XWᵀ − XŴᵀ‖²/‖XWᵀ‖² calibration {before:E3} → {after:E3} ({after / before:P1}), held-out {beforeHeld:E3} → {afterHeld:E3} " +
                $"({afterHeld / beforeHeld:P1}); {fit.ParameterCount} parameters, {fit.Iterations} iterations, {fit.Stop}, {fit.Elapsed.TotalMilliseconds:F0} ms");
            // GPTQ already minimises this objective over the codes, so its scales have less to gain: only "no worse"
            // is required of it. Round-to-nearest ignores the inputs, and a fitted scale per group must win ≥ 10 %.
            if (Optimum(weight, fit.Tensor, hessian) is double optimum)
            {
                // Where the fit has a closed-form optimum (scales per row, kept values per row), say how close the
                // default options (200 iterations, tolerance 1e-6, dampening 0.01) stop to it, in the fit's own E.
                output.WriteLine($"    E (dampened H) {fit.InitialError:E4} → {fit.FinalError:E4}; float64 optimum {optimum:E4} (gap {(fit.FinalError - optimum) / optimum:P2})");
                Assert.True(fit.FinalError <= optimum * 1.05, $"{name}: {fit.FinalError} vs optimum {optimum}");
            }

            Assert.True(after <= maxRatio * before, $"{name}: {before} → {after}");
            Assert.True(afterHeld < beforeHeld, $"{name}: held-out {beforeHeld} → {afterHeld}");
        }

        // For the low-rank row: what activation-aware truncation (SVD-LLM, the whitened optimum) gets without any fit.
        CompressedTensor svdLlm = new LowRankOptions { Rank = RankRule.Fixed(32), Whitening = ActivationWhitening.Cholesky }.CreateCompressor().Compress(weight, context);
        output.WriteLine($"SVD-LLM rank 32 (no fit): calibration {OutputError(exactCalibration, svdLlm, calibration):E3}, held-out {OutputError(exactHeldOut, svdLlm, heldOut):E3}");
    }

    /// <summary>The float64 optimum of the default fit's objective (H dampened by 0.01) when the representation is one
    /// scale per row or a pruned matrix; null otherwise.</summary>
    private static double? Optimum(DenseTensor weight, CompressedTensor fitted, HessianAccumulator hessian)
    {
        int columns = weight.Columns;
        double[] h = Float64Reference.DampenedHessian(hessian, 0.01);
        switch (fitted)
        {
            case QuantizedTensor q when q.Scales.Length == q.Rows:
                float[] unscaled = q.UnscaledValues();
                return RowOptima.OptimumError(weight, h, r => [unscaled.AsSpan(r * columns, columns).ToArray().Select(v => (double)v).ToArray()]);
            case PrunedTensor p:
                return RowOptima.OptimumError(weight, h, r => Enumerable.Range(0, columns).Where(j => p.Mask.IsKept(r, j)).Select(j =>
                {
                    var e = new double[columns];
                    e[j] = 1;
                    return e;
                }).ToArray());
            default:
                return null;
        }
    }

    /// <summary>‖Y − X·Ŵᵀ‖²_F / ‖Y‖²_F in float64, with Y = X·Wᵀ from <see cref="Outputs"/>: from the inputs
    /// themselves, not from H.</summary>
    private static double OutputError(double[] exact, CompressedTensor compressed, float[] x)
    {
        double[] approximate = Outputs(compressed.Decompress().Span, x, compressed.Rows, compressed.Columns);
        double error = 0, energy = 0;
        for (int i = 0; i < exact.Length; i++)
        {
            error += (exact[i] - approximate[i]) * (exact[i] - approximate[i]);
            energy += exact[i] * exact[i];
        }

        return error / energy;
    }

    /// <summary>X·Wᵀ in float64, [samples, rows].</summary>
    private static double[] Outputs(ReadOnlySpan<float> weight, float[] x, int rows, int columns)
    {
        int samples = x.Length / columns;
        var y = new double[samples * rows];
        for (int s = 0; s < samples; s++)
        {
            for (int r = 0; r < rows; r++)
            {
                double sum = 0;
                for (int j = 0; j < columns; j++)
                {
                    sum += (double)x[s * columns + j] * weight[r * columns + j];
                }

                y[s * rows + r] = sum;
            }
        }

        return y;
    }

    private static float[] CorrelatedInputs(int samples, int columns, int seed)
    {
        // The mixing matrix and outlier channels are fixed (seed 7) so calibration and held-out inputs share a
        // distribution; only the Gaussian features depend on the seed.
        DenseTensor z = RandomData.GaussianMatrix(samples, columns, seed);
        DenseTensor mix = RandomData.GaussianMatrix(columns, columns, 7, 1f / MathF.Sqrt(columns));
        var x = new float[samples * columns];
        for (int s = 0; s < samples; s++)
        {
            for (int k = 0; k < columns; k++)
            {
                float zk = z[s, k];
                for (int j = 0; j < columns; j++)
                {
                    x[s * columns + j] += zk * mix[k, j];
                }
            }
        }

        foreach (int channel in new[] { 5, 61, 100 })
        {
            for (int s = 0; s < samples; s++)
            {
                x[s * columns + channel] *= 10;
            }
        }

        return x;
    }
}
