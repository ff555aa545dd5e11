using Compression.Calibration;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>
/// A plain float64 GPTQ written straight from the paper: no blocks, no lazy updates, the inverse formed explicitly
/// (Cholesky, inverse, Cholesky again, as the reference implementation does), every update applied to every later
/// column at once. Only the format's own scale rule and element coding are shared with the code under test.
/// </summary>
internal static class GptqReference
{
    public sealed record Result(byte[] CodesOriginalOrder, double[] Dequantized, double Objective, float[] Scales, int[] Order);

    public static Result Run(DenseTensor weight, double[] hessian, GptqOptions options)
    {
        int rows = weight.Rows, n = weight.Columns;
        RtnOptions rtn = options.Quantization;
        var format = (GroupedFormat)rtn.Format;
        var layout = new ScaleLayout(rtn.EffectiveGranularity, rows, n);
        int groupSize = layout.SegmentWidth, groups = layout.SegmentsPerRow;
        bool perGroup = rtn.EffectiveGranularity is PerGroupGranularity;
        bool staticGroups = options.StaticGroups && perGroup;
        float tensorScale = format.TensorScaleFor(weight.Span.ToArray().Select(MathF.Abs).Max());

        double[] w = weight.Span.ToArray().Select(v => (double)v).ToArray();
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
                    parameters[r * groups + s] = format.ChooseSegment(Values(w, r * n + start, length), tensorScale, rtn);
                }
            }
        }

        int[] order = options.ActOrder ? Enumerable.Range(0, n).OrderByDescending(j => h[j * n + j]).ToArray() : Enumerable.Range(0, n).ToArray();
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
        double[]? u = null;
        double percent = options.DampeningPercent;
        for (int attempt = 1; attempt <= options.MaxDampeningAttempts && u is null; attempt++, percent *= options.DampeningGrowth)
        {
            u = Reference.UpperFactorOfInverse(hp, n, percent * mean);
        }

        if (u is null)
        {
            throw new InvalidOperationException("reference: not positive definite");
        }

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
                    parameters[r * groups + group] = format.ChooseSegment(Values(wp, r * n + j, Math.Min(groupSize, n - j)), tensorScale, rtn);
                }

                float x = (float)wp[r * n + j];
                format.EncodeSegmentWith([x], parameters[r * groups + group], rtn, code);
                format.DecodeSegment(code, parameters[r * groups + group], rtn, decoded);
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

        return new Result(codes, dequantized, Objective(weight, dequantized, hessian), Array.ConvertAll(parameters, p => p.Scale), order);
    }

    /// <summary>½·Σ_rows δᵀHδ, plainly.</summary>
    public static double Objective(DenseTensor weight, double[] approximation, double[] hessian)
    {
        int rows = weight.Rows, n = weight.Columns;
        double total = 0;
        for (int r = 0; r < rows; r++)
        {
            var d = new double[n];
            for (int j = 0; j < n; j++)
            {
                d[j] = weight[r, j] - approximation[r * n + j];
            }

            for (int a = 0; a < n; a++)
            {
                for (int b = 0; b < n; b++)
                {
                    total += d[a] * hessian[a * n + b] * d[b];
                }
            }
        }

        return total / 2;
    }

    public static double Objective(DenseTensor weight, DenseTensor approximation, double[] hessian) =>
        Objective(weight, approximation.Span.ToArray().Select(v => (double)v).ToArray(), hessian);

    private static float[] Values(double[] source, int start, int length) =>
        source.AsSpan(start, length).ToArray().Select(v => (float)v).ToArray();
}

/// <summary>Calibration data with the structure of real activations: correlated channels and a few outliers.</summary>
internal static class GptqData
{
    /// <summary>Writes <paramref name="q"/> to a safetensors file through the serializer and reads it back.</summary>
    public static GptqTensor SerializeRoundTrip(GptqTensor q)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        CompressedTensorSerializer serializer = GptqTensor.Register(CompressedTensorSerializer.Default);
        serializer.Write(writer, "layer", q);
        writer.Save(folder.File("q.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("q.safetensors"));
        return Assert.IsType<GptqTensor>(serializer.Read(checkpoint, "layer"));
    }
}
