using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;
using Xunit.Abstractions;

namespace Compression.Pruning.Tests;

public class SparseGptTests(ITestOutputHelper output)
{
    private static readonly Dictionary<string, (SparseGptOptions Options, int Rows, int Columns)> Cases = new()
    {
        ["unstructured-50"] = (SparseGptOptions.Unstructured50 with { BlockSize = 32 }, 16, 96),
        ["unstructured-30-mask16-block40-tail"] = (new SparseGptOptions { Sparsity = 0.3, BlockSize = 40, MaskBlockSize = 16 }, 12, 100),
        ["unstructured-60-mask48-block32"] = (new SparseGptOptions { Sparsity = 0.6, BlockSize = 32, MaskBlockSize = 48 }, 9, 96),
        ["unstructured-75-one-mask-block"] = (new SparseGptOptions { Sparsity = 0.75, BlockSize = 16, MaskBlockSize = 1000 }, 8, 64),
        ["2:4"] = (SparseGptOptions.TwoFour with { BlockSize = 32 }, 16, 96),
        ["4:8-block20"] = (SparseGptOptions.FourEight with { BlockSize = 20 }, 16, 96),
        ["1:4"] = (new SparseGptOptions { N = 1, M = 4 }, 16, 64),
        ["3:16-block50"] = (new SparseGptOptions { N = 3, M = 16, BlockSize = 50 }, 8, 64),
    };

    public static TheoryData<string> CaseNames() => new(Cases.Keys);

    private static CompressionContext With(HessianAccumulator hessian) => CompressionContext.Default with { InputHessian = hessian };

    private static bool[] Keep(SparsityMask mask)
    {
        var keep = new bool[mask.Rows * mask.Columns];
        for (int r = 0; r < mask.Rows; r++)
        {
            for (int c = 0; c < mask.Columns; c++)
            {
                keep[r * mask.Columns + c] = mask.IsKept(r, c);
            }
        }

        return keep;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void SparseGpt_MatchesThePlainFloat64Reference(string name)
    {
        (SparseGptOptions options, int rows, int columns) = Cases[name];
        int exactMasks = 0;
        const int Seeds = 4;
        for (int seed = 0; seed < Seeds; seed++)
        {
            DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: 100 * seed + columns, standardDeviation: 0.05f);
            HessianAccumulator hessian = RandomData.CorrelatedHessian(columns, samples: 2 * columns, seed: seed + 7);
            double[] h = hessian.GetHessian();

            PrunedTensor fast = new SparseGptPruner(options).Prune(w, With(hessian));
            SparseGptReference.Result reference = SparseGptReference.Run(w, h, options);

            bool[] keep = Keep(fast.Mask);
            int differences = keep.Where((k, i) => k != reference.Keep[i]).Count();
            double relative = Math.Abs(fast.Report!.Objective - reference.Objective) / reference.Objective;
            output.WriteLine($"{name} seed {seed}: {differences} mask differences, objective {fast.Report.Objective:G8} vs {reference.Objective:G8} ({relative:E2})");

            // The objective is recomputed here from the decompressed result, so the report cannot drift from the tensor.
            double recomputed = SparseGptReference.Objective(w, fast.Decompress(), h);
            Assert.True(Math.Abs(recomputed - fast.Report.Objective) <= 1e-9 * recomputed, $"{recomputed} vs {fast.Report.Objective}");
            if (differences == 0)
            {
                exactMasks++;
                // float32 sweep against float64: about 1e-6 relative on these sizes; 1e-4 leaves room for the ordering
                // of float32 roundings in the lazy updates.
                Assert.True(relative <= 1e-4, $"seed {seed}: objective {fast.Report.Objective} vs reference {reference.Objective}");
            }
            else
            {
                // A near-tie of two scores may tip one way in float32 and the other in float64; then the masks differ in a
                // few weights and the objectives by a little more.
                Assert.True(differences <= keep.Length / 100 + 2, $"seed {seed}: {differences} of {keep.Length} mask bits differ");
                Assert.True(relative <= 1e-2, $"seed {seed}: objective {fast.Report.Objective} vs reference {reference.Objective}");
            }
        }

        Assert.True(exactMasks >= Seeds - 1, $"only {exactMasks} of {Seeds} masks equal the reference's");
    }

    [Theory]
    [InlineData(0.0, 16)]
    [InlineData(0.1, 16)]
    [InlineData(0.37, 13)]
    [InlineData(0.5, 32)]
    [InlineData(0.9, 7)]
    public void SparseGpt_PrunesExactlyRoundedTarget_InEveryMaskBlock(double sparsity, int maskBlock)
    {
        const int Rows = 7, Columns = 45;
        var options = new SparseGptOptions { Sparsity = sparsity, MaskBlockSize = maskBlock, BlockSize = 10 };
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 3);
        PrunedTensor pruned = new SparseGptPruner(options).Prune(w, With(RandomData.CorrelatedHessian(Columns, 90, seed: 5)));

        long total = 0;
        for (int start = 0; start < Columns; start += maskBlock)
        {
            int width = Math.Min(maskBlock, Columns - start), prunedInBlock = 0;
            for (int r = 0; r < Rows; r++)
            {
                for (int c = start; c < start + width; c++)
                {
                    prunedInBlock += pruned.Mask.IsKept(r, c) ? 0 : 1;
                }
            }

            // round(s·count), ties to even (e.g. 0.37·91 = 33.67 → 34); the reference's int() floors and its ≤ threshold
            // then prunes one more.
            Assert.Equal((int)Math.Round(sparsity * Rows * width, MidpointRounding.ToEven), prunedInBlock);
            total += prunedInBlock;
        }

        Assert.Equal(total, (long)Rows * Columns - pruned.Mask.KeptCount);
        Assert.Equal(pruned.Mask.Sparsity, pruned.Report!.Sparsity);
    }

    [Theory]
    [InlineData(2, 4)]
    [InlineData(1, 4)]
    [InlineData(4, 8)]
    [InlineData(3, 16)]
    [InlineData(15, 16)]
    public void SparseGpt_KeepsExactlyN_InEveryGroupOfM(int n, int m)
    {
        const int Rows = 9, Columns = 96;
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: n + m);
        PrunedTensor pruned = new SparseGptPruner(new SparseGptOptions { N = n, M = m, BlockSize = 40 })
            .Prune(w, With(RandomData.CorrelatedHessian(Columns, 192, seed: 9)));
        DenseTensor dense = pruned.Decompress();
        for (int r = 0; r < Rows; r++)
        {
            for (int g = 0; g < Columns; g += m)
            {
                int kept = Enumerable.Range(g, m).Count(c => pruned.Mask.IsKept(r, c));
                Assert.Equal(n, kept);
                Assert.All(Enumerable.Range(g, m).Where(c => !pruned.Mask.IsKept(r, c)), c => Assert.Equal(0f, dense[r, c]));
            }
        }

        Assert.Equal(1 - (double)n / m, pruned.Report!.Sparsity, 12);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SparseGpt_ObjectiveIsBelowMagnitudePruning_OnCorrelatedInputsWithOutliers(bool twoFour)
    {
        const int Rows = 32, Columns = 128;
        SparseGptOptions options = twoFour ? SparseGptOptions.TwoFour : SparseGptOptions.Unstructured50;
        var ratios = new List<double>();
        for (int seed = 0; seed < 6; seed++)
        {
            DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 40 + seed, standardDeviation: 0.05f);
            HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 256, seed: 50 + seed, outliers: 4);
            double[] h = hessian.GetHessian();
            PrunedTensor pruned = new SparseGptPruner(options).Prune(w, With(hessian));
            double magnitude = SparseGptReference.Objective(w, SparseGptReference.Apply(w, SparseGptReference.MagnitudeMask(w, options)), h);
            double ratio = pruned.Report!.Objective / magnitude;
            ratios.Add(ratio);
            Assert.True(ratio <= 1, $"seed {seed}: SparseGPT {pruned.Report.Objective} > magnitude {magnitude}");
        }

        output.WriteLine($"{(twoFour ? "2:4" : "50%")}: SparseGPT / magnitude = {string.Join(", ", ratios.Select(r => r.ToString("F3")))}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SparseGpt_WithIdentityHessian_GivesTheMagnitudeMask_AndKeepsTheValues(bool twoFour)
    {
        // H = I: U is diagonal with equal entries, so w²/U_jj² ranks like |w| and no update reaches another column.
        const int Rows = 8, Columns = 64, MaskBlock = 32;
        SparseGptOptions options = twoFour ? SparseGptOptions.TwoFour : new SparseGptOptions { Sparsity = 0.5, BlockSize = 16, MaskBlockSize = MaskBlock };
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 11);
        var identity = new double[Columns * Columns];
        for (int j = 0; j < Columns; j++)
        {
            identity[j * Columns + j] = 1;
        }

        PrunedTensor pruned = new SparseGptPruner(options).Prune(w, identity);

        bool[] expected;
        if (twoFour)
        {
            expected = SparseGptReference.MagnitudeMask(w, options);
        }
        else
        {
            // Magnitude within each mask block (all rows together), which is SparseGPT's granularity.
            expected = Enumerable.Repeat(true, Rows * Columns).ToArray();
            for (int start = 0; start < Columns; start += MaskBlock)
            {
                int s = start;
                foreach (int i in Enumerable.Range(0, Rows * MaskBlock).OrderBy(i => MathF.Abs(w[i / MaskBlock, s + i % MaskBlock])).ThenBy(i => i).Take(Rows * MaskBlock / 2))
                {
                    expected[i / MaskBlock * Columns + s + i % MaskBlock] = false;
                }
            }
        }

        Assert.Equal(expected, Keep(pruned.Mask));
        DenseTensor dense = pruned.Decompress();
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i] ? w.Span[i] : 0f, dense.Span[i]);
        }
    }

    [Fact]
    public void SparseGpt_BlockSizeChangesNeitherMaskNorObjective()
    {
        const int Rows = 12, Columns = 80;
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 21, standardDeviation: 0.05f);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 160, seed: 22);
        PrunedTensor[] results = [.. new[] { 1, 7, 16, 80, 128 }.Select(b =>
            new SparseGptPruner(new SparseGptOptions { Sparsity = 0.5, BlockSize = b, MaskBlockSize = 16 }).Prune(w, With(hessian)))];
        foreach (PrunedTensor result in results[1..])
        {
            Assert.Equal(Keep(results[0].Mask), Keep(result.Mask));
            // Only the order of float32 roundings differs between lazy and immediate updates.
            Assert.Equal(results[0].Report!.Objective, result.Report!.Objective, 1e-5 * results[0].Report!.Objective);
        }
    }

    [Fact]
    public void Compress_ReturnsAPrunedTensor_WithZerosAtPrunedPositions_AndReport()
    {
        const int Rows = 8, Columns = 32;
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 1);
        ICompressor compressor = SparseGptOptions.Unstructured50.CreateCompressor();
        Assert.Equal("sparsegpt", compressor.Name);
        Assert.Equal(CalibrationRequirements.InputHessian, compressor.Requirements);
        var progress = new Recorder();
        var pruned = Assert.IsType<PrunedTensor>(compressor.Compress(w, With(RandomData.CorrelatedHessian(Columns, 64, seed: 2)) with { Progress = progress }));

        Assert.Equal("sparsegpt", pruned.Report!.Method);
        Assert.Equal(0.5, pruned.Report.Sparsity);
        Assert.Same(pruned.Mask, pruned.SparsityMask);
        Assert.True(pruned.Report.Objective > 0 && double.IsFinite(pruned.Report.Objective));
        Assert.Equal(SparsityMask.FromNonZeros(pruned.Decompress()).KeptCount, pruned.Mask.KeptCount);
        Assert.Equal([(1L, 1L)], progress.Reports.Select(p => (p.Completed, p.Total)));
        Assert.Equal(w.Span.ToArray(), RandomData.GaussianMatrix(Rows, Columns, seed: 1).Span.ToArray());   // input untouched
    }

    [Fact]
    public void SparseGpt_DeadInputs_AreZeroed_AndDoNotCountInTheObjective()
    {
        const int Rows = 6, Columns = 32, Samples = 64;
        float[] x = RandomData.Gaussian(Samples * Columns, seed: 4);
        for (int s = 0; s < Samples; s++)
        {
            x[s * Columns + 5] = 0;
            x[s * Columns + 20] = 0;
        }

        var hessian = new HessianAccumulator(Columns);
        hessian.Add(x, Samples);
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 5);
        PrunedTensor pruned = new SparseGptPruner(new SparseGptOptions { Sparsity = 0.25 }).Prune(w, With(hessian));
        DenseTensor dense = pruned.Decompress();
        for (int r = 0; r < Rows; r++)
        {
            Assert.Equal(0f, dense[r, 5]);
            Assert.Equal(0f, dense[r, 20]);
        }

        Assert.Equal(SparseGptReference.Objective(w, dense, hessian.GetHessian()), pruned.Report!.Objective, 1e-9 * pruned.Report.Objective);
    }

    [Fact]
    public void SparseGpt_SingularHessian_IsHandledByDampening()
    {
        // Fewer samples than inputs: H has rank 16 of 64, positive semi-definite only; λ = 1%·mean(diag H) suffices.
        const int Rows = 8, Columns = 64;
        HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 16, seed: 3, outliers: 0);
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 6);
        PrunedTensor pruned = new SparseGptPruner(SparseGptOptions.TwoFour).Prune(w, With(hessian));
        Assert.Equal(0.5, pruned.Report!.Sparsity);
        Assert.True(double.IsFinite(pruned.Report.Objective));
        Assert.All(pruned.Values.ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void SparseGpt_IndefiniteHessian_RetriesWithMoreDampening_ThenGivesUp()
    {
        // H = I − 1.5·vvᵀ/‖v‖² has the eigenvalue −0.5: λ = 0.01 and 0.1 (× mean diag ≈ 1) fail, λ = 1 works.
        const int Rows = 4, Columns = 16;
        var h = new double[Columns * Columns];
        for (int a = 0; a < Columns; a++)
        {
            for (int b = 0; b < Columns; b++)
            {
                h[a * Columns + b] = (a == b ? 1 : 0) - 1.5 / Columns;
            }
        }

        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 8);
        PrunedTensor pruned = new SparseGptPruner(SparseGptOptions.Unstructured50).Prune(w, h);
        Assert.Equal(0.5, pruned.Report!.Sparsity);
        Assert.Throws<InvalidOperationException>(() => new SparseGptPruner(SparseGptOptions.Unstructured50 with { MaxDampeningAttempts = 2 }).Prune(w, h));
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void Options_RefuseSparsityOutsideZeroToOne(double sparsity) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseGptOptions { Sparsity = sparsity });

    [Theory]
    [InlineData(4, 4)]
    [InlineData(5, 4)]
    [InlineData(0, 4)]
    [InlineData(2, 0)]
    public void Pruner_RefusesNotAnNofMPattern(int n, int m) =>
        Assert.ThrowsAny<ArgumentException>(() => new SparseGptPruner(new SparseGptOptions { N = n, M = m }));

    [Fact]
    public void Options_RefuseOutOfRangeValues()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseGptOptions { M = 17 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseGptOptions { M = 1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseGptOptions { N = 16 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseGptOptions { BlockSize = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseGptOptions { MaskBlockSize = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseGptOptions { DampeningPercent = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseGptOptions { MaxDampeningAttempts = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseGptOptions { DampeningGrowth = 1 });
    }

    [Fact]
    public void Prune_RefusesBadInputs()
    {
        const int Rows = 4, Columns = 32;
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 1);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 64, seed: 2);
        var pruner = new SparseGptPruner(SparseGptOptions.Unstructured50);

        Assert.ThrowsAny<ArgumentException>(() => pruner.Prune(w, CompressionContext.Default));                                   // no Hessian
        Assert.ThrowsAny<ArgumentException>(() => pruner.Prune(w, With(RandomData.CorrelatedHessian(33, 64, seed: 2))));     // wrong size
        Assert.ThrowsAny<ArgumentException>(() => pruner.Prune(w, new double[31 * 31]));                                          // wrong size
        Assert.ThrowsAny<ArgumentException>(() => pruner.Prune(w, With(new HessianAccumulator(Columns))));                      // no samples

        double[] nan = hessian.GetHessian();
        nan[5 * Columns + 7] = double.NaN;
        Assert.ThrowsAny<ArgumentException>(() => pruner.Prune(w, nan));
        double[] negative = hessian.GetHessian();
        negative[3 * Columns + 3] = -1;
        Assert.ThrowsAny<ArgumentException>(() => pruner.Prune(w, negative));

        DenseTensor bad = w.Clone();
        bad[2, 3] = float.NaN;
        Assert.ThrowsAny<ArgumentException>(() => pruner.Prune(bad, With(hessian)));
        bad[2, 3] = float.PositiveInfinity;
        Assert.ThrowsAny<ArgumentException>(() => pruner.Prune(bad, With(hessian)));

        // N:M needs whole groups.
        DenseTensor narrow = RandomData.GaussianMatrix(Rows, 30, seed: 1);
        Assert.ThrowsAny<ArgumentException>(() => new SparseGptPruner(SparseGptOptions.TwoFour).Prune(narrow, With(RandomData.CorrelatedHessian(30, 64, seed: 2))));
    }

    [Fact]
    public void Prune_HonoursCancellation_BeforeAndBetweenBlocks()
    {
        const int Rows = 8, Columns = 64;
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 1);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 128, seed: 2);
        var pruner = new SparseGptPruner(SparseGptOptions.Unstructured50 with { BlockSize = 16 });

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => pruner.Prune(w, With(hessian) with { CancellationToken = cancelled.Token }));

        // Cancel from the first block's progress report: the second block must not start.
        using var source = new CancellationTokenSource();
        var progress = new Recorder(source.Cancel);
        Assert.ThrowsAny<OperationCanceledException>(() => pruner.Prune(w, With(hessian) with { CancellationToken = source.Token, Progress = progress }));
        Assert.Single(progress.Reports);
        Assert.Equal(4, progress.Reports[0].Total);
    }

    /// <summary>A synchronous progress sink (Progress&lt;T&gt; posts to the thread pool), with an optional action per report.</summary>
    private sealed class Recorder(Action? onReport = null) : IProgress<CompressionProgress>
    {
        public List<CompressionProgress> Reports { get; } = [];

        public void Report(CompressionProgress value)
        {
            Reports.Add(value);
            onReport?.Invoke();
        }
    }
}
