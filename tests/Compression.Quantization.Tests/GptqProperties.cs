using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests;

/// <summary>FsCheck properties of GPTQ over formats, shapes, orders and seeds (small shapes: each case runs GPTQ once or twice).</summary>
public class GptqProperties
{
    private static readonly RtnOptions[] Formats =
    [
        RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(16) },
        RtnOptions.W8PerChannel,
        new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), Symmetric = false },
        new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerChannel, Clipping = ClippingSearch.Default with { Grid = 20 } },
        RtnOptions.Fp8PerChannel,
        new RtnOptions { Format = NumberFormat.Fp4E2M1, Granularity = Granularity.PerGroup(32) },
        RtnOptions.Mxfp4,
        RtnOptions.Nvfp4,
        new RtnOptions { Format = NumberFormat.TernaryAbsMean, Granularity = Granularity.PerGroup(32) },
        new RtnOptions { Format = NumberFormat.TernaryThreshold, Granularity = Granularity.PerChannel },
    ];

    private static (DenseTensor W, HessianAccumulator H, GptqOptions Options) Case(int seed, int format, bool actOrder, int shape)
    {
        int rows = 4 + shape % 4 * 4, columns = 32 * (1 + shape / 4 % 3);
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed);
        HessianAccumulator h = RandomData.CorrelatedHessian(columns, 2 * columns, seed + 100);
        return (w, h, new GptqOptions { Quantization = Formats[format % Formats.Length], ActOrder = actOrder, BlockSize = 16 + Math.Abs(seed % 3) * 24 });
    }

    /// <summary>
    /// GPTQ's objective against RTN's with the same format and grouping. "Never worse" is not a theorem (the sweep is
    /// greedy, and group scales follow the updated weights): over 120 fixed small random layers per format it was worse
    /// in 0–3 cases (worst ratio 2.1, NVFP4 on a 16×64 layer), with a median ratio of 0.31–0.36. So this holds the
    /// distribution, deterministically: worse in at most 5% of cases, and a mean ratio below 0.6 (0.75 for ternary).
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    public void Gptq_ObjectiveBeatsRtn_OnAlmostEveryLayer(int format)
    {
        var ratios = new List<double>();
        for (int seed = -60; seed < 60; seed++)
        {
            (DenseTensor w, HessianAccumulator h, GptqOptions options) = Case(seed, format, seed % 2 == 0, Math.Abs(seed) % 12);
            GptqTensor q = options.CreateCompressor().Quantize(w, CompressionContext.Default with { InputHessian = h });
            double rtn = GptqReference.Objective(w, options.Quantization.CreateCompressor().Quantize(w).Decompress(), h.GetHessian());
            ratios.Add(q.Report!.Objective / rtn);
        }

        Assert.True(ratios.Count(r => r > 1) <= ratios.Count / 20, $"worse than RTN in {ratios.Count(r => r > 1)} of {ratios.Count} layers");
        // Three levels leave the sweep less room: ternary's mean ratio was 0.64–0.66 over the same layers.
        double bound = Formats[format].Format is var f && (f == NumberFormat.TernaryAbsMean || f == NumberFormat.TernaryThreshold) ? 0.75 : 0.6;
        Assert.True(ratios.Average() < bound, $"mean objective ratio to RTN {ratios.Average():F3} (worse in {ratios.Count(r => r > 1)})");
    }

    [Property(MaxTest = 40)]
    public bool Gptq_WithAScaledIdentityHessian_EqualsRtnExactly(int seed, NonNegativeInt format, bool actOrder, NonNegativeInt shape, PositiveInt scale)
    {
        (DenseTensor w, _, GptqOptions options) = Case(seed, format.Get, actOrder, shape.Get);
        int n = w.Columns;
        var h = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            h[j * n + j] = scale.Get / 7.0;
        }

        GptqTensor q = new GptqQuantizer(options).Quantize(w, h);
        QuantizedTensor rtn = options.Quantization.CreateCompressor().Quantize(w);
        return q.IsIdentityOrder && q.Quantized.UnpackCodes().AsSpan().SequenceEqual(rtn.UnpackCodes()) &&
               q.Quantized.Scales.Span.SequenceEqual(rtn.Scales.Span) && q.Quantized.ZeroPoints.Span.SequenceEqual(rtn.ZeroPoints.Span);
    }

    [Property(MaxTest = 25)]
    public bool Gptq_ReconstructionIsInOriginalOrder_ForEveryOrderAndGrouping(int seed, NonNegativeInt format, bool staticGroups, NonNegativeInt shape)
    {
        // Act-order only permutes the work: decompressing must give back the original column layout, which the
        // objective measured in the original order (against the original H) certifies, and equal to the reference's.
        (DenseTensor w, HessianAccumulator h, GptqOptions options) = Case(seed, format.Get, true, shape.Get);
        options = options with { StaticGroups = staticGroups };
        GptqTensor q = options.CreateCompressor().Quantize(w, CompressionContext.Default with { InputHessian = h });
        double direct = GptqReference.Objective(w, q.Decompress(), h.GetHessian());
        return Math.Abs(direct - q.Report!.Objective) <= 1e-9 * direct + 1e-300;
    }
}
