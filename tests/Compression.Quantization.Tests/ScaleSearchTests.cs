using Compression.Calibration;
using Compression.Quantization.Formats;
using Compression.Quantization.Gpu;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using Compression.Testing;
using Xunit.Abstractions;

namespace Compression.Quantization.Tests;

/// <summary>
/// The scale search of FP, MX and NVFP4 formats (<see cref="RtnOptions.Clipping"/>): against a plain reference that
/// enumerates the same candidate scales, and its effect on RTN and GPTQ error.
/// </summary>
public class ScaleSearchTests(ITestOutputHelper output)
{
    private static readonly MiniFloatCodec Fp4 = MiniFloatCodec.Fp4E2M1;

    /// <summary>Heavy-tailed weights: Gaussian with every 29th value ×8.</summary>
    private static DenseTensor Weights(int rows, int columns, int seed)
    {
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed, standardDeviation: 0.05f);
        for (int i = 0; i < w.Length; i += 29)
        {
            w.Span[i] *= 8;
        }

        return w;
    }

    /// <summary>The reference: candidates in the documented order, the first with the least Σ|x − dq|^norm.</summary>
    private static float ReferenceScale(float[] x, Func<float, float> rule, Func<float, float?> above, Func<float, float> divisor, ClippingSearch search)
    {
        float amax = x.Max(MathF.Abs);
        double Error(float scale)
        {
            float d = divisor(scale);
            return x.Sum(v => Math.Pow(Math.Abs((double)(Fp4.RoundToGrid(v / d) * d) - v), search.Norm));
        }

        float best = rule(amax);
        double bestError = Error(best);
        var candidates = new List<float>();
        if (above(best) is float up)
        {
            candidates.Add(up);
        }

        float previous = best;
        for (int i = 1; i <= (int)(search.MaxShrink * search.Grid); i++)
        {
            float s = rule(amax * (1f - (float)i / search.Grid));
            if (s != previous)
            {
                candidates.Add(s);
                previous = s;
            }
        }

        foreach (float s in candidates.Where(s => s != 0 && float.IsFinite(s)))
        {
            double e = Error(s);
            if (e < bestError)
            {
                (best, bestError) = (s, e);
            }
        }

        return best;
    }

    private static float PowerOfTwo(int k) => MathF.Pow(2, k);

    [Theory]
    [InlineData("mxfp4")]
    [InlineData("nvfp4")]
    [InlineData("fp4-g32")]
    public void ScaleSearch_ChoosesWhatThePlainReferenceChooses(string scheme)
    {
        DenseTensor w = Weights(16, 256, seed: scheme.Length);
        var search = ClippingSearch.Default;
        RtnOptions options = scheme switch
        {
            "mxfp4" => RtnOptions.Mxfp4,
            "nvfp4" => RtnOptions.Nvfp4,
            _ => new RtnOptions { Format = NumberFormat.Fp4E2M1, Granularity = Granularity.PerGroup(32) },
        } with { Clipping = search };
        QuantizedTensor q = options.CreateCompressor().Quantize(w);
        int group = scheme == "nvfp4" ? 16 : 32;
        float g = w.Span.ToArray().Max(MathF.Abs) / (448f * 6f);
        Func<float, float> rule = scheme switch
        {
            "mxfp4" => amax => amax == 0 ? PowerOfTwo(-127) : PowerOfTwo(Math.Max(-127, (int)Math.Floor(Math.Log2(amax)) - 2)),
            "nvfp4" => amax => MiniFloatCodec.Fp8E4M3.RoundToGrid(amax / (6f * g)),
            _ => amax => amax / 6f,
        };
        Func<float, float?> above = scheme switch
        {
            "mxfp4" => s => s * 2,
            "nvfp4" => s => MiniFloatCodec.Fp8E4M3.Decode((byte)(MiniFloatCodec.Fp8E4M3.EncodeGridValue(s) + 1)),
            _ => _ => null,
        };
        Func<float, float> divisor = scheme == "nvfp4" ? s => s * g : s => s;

        int changed = 0;
        for (int r = 0; r < w.Rows; r++)
        {
            for (int k = 0; k < w.Columns / group; k++)
            {
                float[] x = w.Span.Slice(r * w.Columns + k * group, group).ToArray();
                float expected = ReferenceScale(x, rule, above, divisor, search);
                Assert.Equal(expected, q.ScalesArray[r * (w.Columns / group) + k]);
                changed += expected != rule(x.Max(MathF.Abs)) ? 1 : 0;
            }
        }

        output.WriteLine($"{scheme}: the search moved {changed} of {w.Rows * w.Columns / group} group scales");
        Assert.True(changed > 0, "the search never moved a scale: the test data do not exercise it");
    }

    [Theory]
    [InlineData("mxfp4")]
    [InlineData("nvfp4")]
    [InlineData("fp8-per-channel")]
    [InlineData("fp4-per-tensor")]
    public void ScaleSearch_NeverIncreasesAGroupsError_AndLowersTheTotal(string scheme)
    {
        DenseTensor w = Weights(12, 192, seed: 3);
        RtnOptions plain = scheme switch
        {
            "mxfp4" => RtnOptions.Mxfp4,
            "nvfp4" => RtnOptions.Nvfp4,
            "fp8-per-channel" => RtnOptions.Fp8PerChannel,
            _ => new RtnOptions { Format = NumberFormat.Fp4E2M1, Granularity = Granularity.PerTensor },
        };
        RtnOptions searched = plain with { Clipping = ClippingSearch.Default };
        DenseTensor a = plain.CreateCompressor().Quantize(w).Decompress(), b = searched.CreateCompressor().Quantize(w).Decompress();
        var layout = new ScaleLayout(plain.EffectiveGranularity, w.Rows, w.Columns);
        double totalPlain = 0, totalSearched = 0;
        for (int group = 0; group < layout.GroupCount; group++)
        {
            (int firstRow, int rowCount, int segment) = layout.GroupExtent(group);
            (int start, int length) = layout.Segment(segment);
            double ea = 0, eb = 0;
            for (int r = firstRow; r < firstRow + rowCount; r++)
            {
                for (int c = start; c < start + length; c++)
                {
                    ea += Math.Pow(Math.Abs(a[r, c] - w[r, c]), 2.4);
                    eb += Math.Pow(Math.Abs(b[r, c] - w[r, c]), 2.4);
                }
            }

            Assert.True(eb <= ea * (1 + 1e-12), $"group {group}: {eb} > {ea}");
            totalPlain += ea;
            totalSearched += eb;
        }

        output.WriteLine($"{scheme}: Σ|e|^2.4 {totalSearched:E4} with the search, {totalPlain:E4} without ({totalSearched / totalPlain:P1})");
        Assert.True(totalSearched < totalPlain);
    }

    [Theory]
    [InlineData("mxfp4", 32)]
    [InlineData("nvfp4", 16)]
    public void MrGptq_WithTheScaleSearch_LowersTheLayerObjective(string scheme, int block)
    {
        RtnOptions rtn = scheme == "mxfp4" ? RtnOptions.Mxfp4 : RtnOptions.Nvfp4;
        DenseTensor w = Weights(32, 256, seed: 11);
        HessianAccumulator hessian = RandomData.CorrelatedHessian(256, samples: 512, seed: 12);
        var context = CompressionContext.Default with { InputHessian = hessian };
        var options = new GptqOptions { Quantization = rtn, ActOrder = true, StaticGroups = true, Rotation = new HadamardRotationParameters(block, SignSeed: 1) };
        double plain = new GptqQuantizer(options).Quantize(w, context).Report!.Objective;
        GptqTensor searched = new GptqQuantizer(options with { Quantization = rtn with { Clipping = ClippingSearch.Default } }).Quantize(w, context);
        output.WriteLine($"{scheme}: MR-GPTQ objective {searched.Report!.Objective:G6} with the scale search, {plain:G6} without");
        Assert.True(searched.Report.Objective < plain);
        // Every scale is one the format stores: the tensor survives serialization and decodes to the same values.
        Assert.Equal(searched.Decompress().Span.ToArray(), GptqData.SerializeRoundTrip(searched).Decompress().Span.ToArray());
    }

    [Fact]
    public void ScaleSearch_OnTheGpu_IsRefused()
    {
        using var gpu = Compression.Gpu.Runtime.GpuContext.CreateCpuSimulator();
        Assert.Throws<NotSupportedException>(() => new GpuRoundToNearestQuantizer(gpu, RtnOptions.Mxfp4 with { Clipping = ClippingSearch.Default }));
        Assert.Throws<NotSupportedException>(() => new GpuGptqQuantizer(gpu, new GptqOptions { Quantization = RtnOptions.Nvfp4 with { Clipping = ClippingSearch.Default } }));
    }
}
