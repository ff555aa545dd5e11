using Compression.Calibration;
using Compression.Composition;
using Compression.Gpu.Runtime;
using Compression.Numerics;
using Compression.Pruning;
using Compression.Quantization.Gpu;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using Compression.Testing;
using Xunit.Abstractions;

namespace Compression.Quantization.Tests;

/// <summary>GPTQ after pruning: the prior stage's sparsity mask kept exactly, survivors quantized with error feedback.</summary>
public class GptqMaskTests(ITestOutputHelper output)
{
    private static readonly Dictionary<string, RtnOptions> Schemes = new()
    {
        ["int4-g32-sym"] = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32) },
        ["int4-g32-asym"] = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), Symmetric = false },
        ["int3-per-channel-asym-clipped"] = new RtnOptions
        {
            Format = NumberFormat.Int3, Granularity = Granularity.PerChannel, Symmetric = false, Clipping = ClippingSearch.Default with { Grid = 20 },
        },
        ["int8-per-channel"] = RtnOptions.W8PerChannel,
        ["fp8-per-channel"] = RtnOptions.Fp8PerChannel,
        ["mxfp4"] = RtnOptions.Mxfp4,
        ["nvfp4"] = RtnOptions.Nvfp4,
        ["ternary-absmean-g64"] = new RtnOptions { Format = NumberFormat.TernaryAbsMean, Granularity = Granularity.PerGroup(64) },
        ["ternary-twn-per-channel"] = new RtnOptions { Format = NumberFormat.TernaryThreshold, Granularity = Granularity.PerChannel },
    };

    public static TheoryData<string, bool, bool> Cases()
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

    /// <summary>A random mask keeping about <paramref name="density"/> of the weights, and the weight zeroed where it prunes.</summary>
    private static (DenseTensor Pruned, PrunedTensor Prior) RandomlyPruned(DenseTensor weight, double density, int seed)
    {
        var random = new Random(seed);
        bool[] keep = [.. Enumerable.Range(0, weight.Length).Select(_ => random.NextDouble() < density)];
        SparsityMask mask = SparsityMask.FromPredicate(weight.Rows, weight.Columns, keep, static (k, i) => k[i]);
        var prior = new PrunedTensor(weight, mask);
        return (prior.Decompress(), prior);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gptq_WithPriorMask_KeepsPrunedWeightsAtExactlyZero_AndMatchesAMaskedFloat64Reference(string scheme, bool actOrder, bool staticGroups)
    {
        const int Rows = 16, Columns = 128;
        var options = new GptqOptions { Quantization = Schemes[scheme], ActOrder = actOrder, StaticGroups = staticGroups, BlockSize = 48 };
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 3, standardDeviation: 0.05f);
        (DenseTensor pruned, PrunedTensor prior) = RandomlyPruned(w, 0.5, seed: 4);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 2 * Columns, seed: 5);

        GptqTensor q = new GptqQuantizer(options).Quantize(pruned, CompressionContext.Default with { InputHessian = hessian, Prior = prior });

        Assert.Same(prior.Mask, q.SparsityMask);
        DenseTensor dense = q.Decompress();
        for (int r = 0; r < Rows; r++)
        {
            for (int c = 0; c < Columns; c++)
            {
                if (!prior.Mask.IsKept(r, c))
                {
                    Assert.Equal(0f, dense[r, c]);
                }
            }
        }

        MaskedReference.Result reference = MaskedReference.Run(pruned, hessian.GetHessian(), options, prior.Mask);
        byte[] stored = q.Quantized.UnpackCodes();
        var codes = new byte[Rows * Columns];
        for (int r = 0; r < Rows; r++)
        {
            for (int k = 0; k < Columns; k++)
            {
                codes[r * Columns + q.Permutation[k]] = stored[r * Columns + k];
            }
        }

        double equal = codes.Zip(reference.Codes).Count(p => p.First == p.Second) / (double)codes.Length;
        double relative = Math.Abs(q.Report!.Objective - reference.Objective) / reference.Objective;
        output.WriteLine($"{scheme} act={actOrder} static={staticGroups}: objective {q.Report.Objective:G6} vs {reference.Objective:G6} ({relative:E2}), codes equal {equal:P2}");
        // As for unmasked GPTQ (GptqTests): float32 sweep against float64, rare flips of codes at a rounding boundary.
        Assert.True(equal >= 0.995, $"only {equal:P2} of codes equal");
        Assert.True(relative <= 1e-4, $"objective differs by {relative:E2}");
    }

    [Fact]
    public void Gptq_WithAMaskKeepingEverything_IsBitIdenticalToNoMask()
    {
        const int Rows = 16, Columns = 96;
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 8, standardDeviation: 0.05f);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 192, seed: 9);
        var gptq = new GptqQuantizer(GptqOptions.W4Group128 with { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) }, ActOrder = true });
        var prior = new PrunedTensor(w, SparsityMask.FromPredicate(Rows, Columns, 0, static (_, _) => true));

        GptqTensor plain = gptq.Quantize(w, CompressionContext.Default with { InputHessian = hessian });
        GptqTensor masked = gptq.Quantize(w, CompressionContext.Default with { InputHessian = hessian, Prior = prior });

        Assert.Equal(plain.Quantized.UnpackCodes(), masked.Quantized.UnpackCodes());
        Assert.Equal(plain.Quantized.Scales.ToArray(), masked.Quantized.Scales.ToArray());
        Assert.Equal(plain.Report!.Objective, masked.Report!.Objective);
        Assert.Null(plain.SparsityMask);
        Assert.Equal(plain.StorageBits + (long)Rows * Columns, masked.StorageBits);   // the stored mask, one bit per weight
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SparseGptThenGptq_KeepsTheMaskExactly_AndBeatsSparseGptThenRtn(bool twoFour)
    {
        const int Rows = 32, Columns = 128;
        SparseGptOptions sparsity = twoFour ? SparseGptOptions.TwoFour : SparseGptOptions.Unstructured50;
        RtnOptions format = new() { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32) };
        var joint = new ChainedCompressor(new SparseGptPruner(sparsity), new GptqQuantizer(new GptqOptions { Quantization = format }));
        var rtnAfter = new ChainedCompressor(new SparseGptPruner(sparsity), format.CreateCompressor());
        var ratios = new List<double>();
        for (int seed = 0; seed < 4; seed++)
        {
            DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 60 + seed, standardDeviation: 0.05f);
            HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 256, seed: 70 + seed);
            double[] h = hessian.GetHessian();
            var context = CompressionContext.Default with { InputHessian = hessian };
            PrunedTensor prunedOnly = new SparseGptPruner(sparsity).Prune(w, context);

            var result = Assert.IsType<GptqTensor>(joint.Compress(w, context));
            CompressedTensor rtn = rtnAfter.Compress(w, context);

            // The mask is SparseGPT's, kept exactly: the pruned weights decode to 0 and the result carries the same bits.
            Assert.Equal(prunedOnly.Mask.ToBytes(), result.SparsityMask!.ToBytes());
            DenseTensor dense = result.Decompress();
            for (int i = 0; i < dense.Length; i++)
            {
                if (!prunedOnly.Mask.IsKept(i / Columns, i % Columns))
                {
                    Assert.Equal(0f, dense.Span[i]);
                }
            }

            // Both objectives against the original weight.
            double gptqObjective = GptqReference.Objective(w, dense, h);
            double rtnObjective = GptqReference.Objective(w, rtn.Decompress(), h);
            double prunedObjective = prunedOnly.Report!.Objective;
            ratios.Add(gptqObjective / rtnObjective);
            output.WriteLine($"seed {seed}: pruned only {prunedObjective:G4}, +GPTQ {gptqObjective:G4}, +RTN {rtnObjective:G4}");
            Assert.True(gptqObjective <= rtnObjective, $"seed {seed}: SparseGPT+GPTQ {gptqObjective} > SparseGPT+RTN {rtnObjective}");
        }

        output.WriteLine($"{(twoFour ? "2:4" : "50%")} + INT4 g32: (SparseGPT+GPTQ) / (SparseGPT+RTN) = {string.Join(", ", ratios.Select(r => r.ToString("F3")))}");
    }

    [Fact]
    public void Gptq_WithPriorMask_SerializesTheMask()
    {
        const int Rows = 8, Columns = 128;
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 12, standardDeviation: 0.05f);
        (DenseTensor pruned, PrunedTensor prior) = RandomlyPruned(w, 0.4, seed: 13);
        GptqTensor q = new GptqQuantizer(GptqOptions.W4Group128 with { ActOrder = true })
            .Quantize(pruned, CompressionContext.Default with { InputHessian = RandomData.CorrelatedHessian(Columns, 128, seed: 14), Prior = prior });

        GptqTensor back = GptqData.SerializeRoundTrip(q);
        Assert.Equal(prior.Mask.ToBytes(), back.SparsityMask!.ToBytes());
        Assert.Equal(q.Decompress().Span.ToArray(), back.Decompress().Span.ToArray());
        Assert.Equal(q.StorageBits, back.StorageBits);
    }

    [Fact]
    public void Gptq_RefusesAMaskItCannotKeep()
    {
        const int Rows = 8, Columns = 128;
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 1);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(Columns, 128, seed: 2);
        (DenseTensor pruned, PrunedTensor prior) = RandomlyPruned(w, 0.5, seed: 3);
        var context = CompressionContext.Default with { InputHessian = hessian, Prior = prior };

        // A mask of another shape.
        var otherShape = new PrunedTensor(RandomData.GaussianMatrix(Rows, 32, seed: 1), SparsityMask.FromPredicate(Rows, 32, 0, static (_, _) => true));
        ArgumentException shape = Assert.ThrowsAny<ArgumentException>(
            () => new GptqQuantizer(GptqOptions.W4Group128).Quantize(w, context with { Prior = otherShape }));
        Assert.Contains("sparsity mask is 8×32", shape.Message);

        // A Hadamard rotation mixes pruned and kept columns.
        var rotated = new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.Mxfp4, Rotation = new HadamardRotationParameters(32) });
        ArgumentException rotation = Assert.ThrowsAny<ArgumentException>(() => rotated.Quantize(pruned, context));
        Assert.Contains("Hadamard rotation", rotation.Message);
    }

    /// <summary>
    /// Masked GPTQ in float64 without blocks: a pruned weight is coded as 0 and its whole current value is the error;
    /// a group's parameters come from its current values with the pruned ones at 0 (static groups: from the original
    /// weight, pruned at 0). U from Core's <see cref="Cholesky"/> (tested on its own); everything else plain.
    /// </summary>
    private static class MaskedReference
    {
        public sealed record Result(byte[] Codes, double Objective);

        public static Result Run(DenseTensor weight, double[] hessian, GptqOptions options, SparsityMask mask)
        {
            int rows = weight.Rows, n = weight.Columns;
            RtnOptions rtn = options.Quantization;
            var format = (GroupedFormat)rtn.Format;
            var layout = new ScaleLayout(rtn.EffectiveGranularity, rows, n);
            int groupSize = layout.SegmentWidth, groups = layout.SegmentsPerRow;
            bool staticGroups = options.StaticGroups && rtn.EffectiveGranularity is PerGroupGranularity;
            float tensorScale = format.TensorScaleFor(weight.Span.ToArray().Select(MathF.Abs).Max());
            double[] w = [.. weight.Span.ToArray().Select(v => (double)v)];
            double[] h = (double[])hessian.Clone();
            for (int j = 0; j < n; j++)
            {
                if (h[j * n + j] == 0)
                {
                    h[j * n + j] = 1;
                    for (int r = 0; r < rows; r++)
                    {
                        w[r * n + j] = 0;
                    }
                }
            }

            var parameters = new SegmentParameters[rows * groups];
            if (staticGroups)
            {
                for (int r = 0; r < rows; r++)
                {
                    for (int s = 0; s < groups; s++)
                    {
                        (int start, int length) = layout.Segment(s);
                        int row = r;
                        float[] values = [.. Enumerable.Range(start, length).Select(c => mask.IsKept(row, c) ? (float)w[row * n + c] : 0f)];
                        parameters[r * groups + s] = format.ChooseSegment(values, tensorScale, rtn);
                    }
                }
            }

            int[] order = options.ActOrder ? [.. Enumerable.Range(0, n).OrderByDescending(j => h[j * n + j])] : [.. Enumerable.Range(0, n)];
            var wp = new double[rows * n];
            var hp = new double[n * n];
            for (int r = 0; r < rows; r++)
            {
                for (int k = 0; k < n; k++)
                {
                    wp[r * n + k] = w[r * n + order[k]];
                }
            }

            for (int a = 0; a < n; a++)
            {
                for (int b = 0; b < n; b++)
                {
                    hp[a * n + b] = h[order[a] * n + order[b]];
                }
            }

            double mean = Enumerable.Range(0, n).Average(j => hp[j * n + j]);
            var u = new double[n * n];
            bool factored = false;
            double percent = options.DampeningPercent;
            for (int attempt = 1; attempt <= options.MaxDampeningAttempts && !factored; attempt++, percent *= options.DampeningGrowth)
            {
                double[] damped = (double[])hp.Clone();
                for (int j = 0; j < n; j++)
                {
                    damped[j * n + j] += percent * mean;
                }

                factored = Cholesky.TryUpperFactorOfInverse(damped, n, u);
            }

            Assert.True(factored);
            var codes = new byte[rows * n];
            Span<byte> code = stackalloc byte[1];
            Span<float> decoded = stackalloc float[1];
            for (int j = 0; j < n; j++)
            {
                for (int r = 0; r < rows; r++)
                {
                    int group = staticGroups ? order[j] / groupSize : j / groupSize;
                    if (!staticGroups && j % groupSize == 0)
                    {
                        int row = r;
                        float[] values = [.. Enumerable.Range(j, Math.Min(groupSize, n - j))
                            .Select(k => mask.IsKept(row, order[k]) ? (float)wp[row * n + k] : 0f)];
                        parameters[r * groups + group] = format.ChooseSegment(values, tensorScale, rtn);
                    }

                    bool kept = mask.IsKept(r, order[j]);
                    float x = kept ? (float)wp[r * n + j] : 0f;
                    format.EncodeSegmentWith([x], parameters[r * groups + group], rtn, code);
                    format.DecodeSegment(code, parameters[r * groups + group], rtn, decoded);
                    Assert.True(kept || decoded[0] == 0);
                    codes[r * n + order[j]] = code[0];
                    double error = (wp[r * n + j] - decoded[0]) / u[j * n + j];
                    wp[r * n + j] = decoded[0];
                    for (int k = j + 1; k < n; k++)
                    {
                        wp[r * n + k] -= error * u[j * n + k];
                    }
                }
            }

            var dequantized = new double[rows * n];
            for (int r = 0; r < rows; r++)
            {
                for (int k = 0; k < n; k++)
                {
                    dequantized[r * n + order[k]] = wp[r * n + k];
                }
            }

            return new Result(codes, GptqReference.Objective(weight, dequantized, hessian));
        }
    }
}

/// <summary>The GPU sweep has no mask: refused before any device work, so ILGPU's CPU simulator suffices.</summary>
[Collection("Gpu")]
public class GpuGptqMaskTests
{
    [Fact]
    public void GpuGptq_RefusesAPriorMask_WithNotSupported()
    {
        const int Rows = 8, Columns = 128;
        DenseTensor w = RandomData.GaussianMatrix(Rows, Columns, seed: 1);
        var prior = new PrunedTensor(w, SparsityMask.FromPredicate(Rows, Columns, 0, static (_, i) => i % 2 == 0));
        var context = CompressionContext.Default with { InputHessian = RandomData.CorrelatedHessian(Columns, 128, seed: 2), Prior = prior };
        using GpuContext gpu = GpuContext.CreateCpuSimulator();
        Assert.Throws<NotSupportedException>(() => new GpuGptqQuantizer(gpu, GptqOptions.W4Group128).Quantize(prior.Decompress(), context));
    }
}
