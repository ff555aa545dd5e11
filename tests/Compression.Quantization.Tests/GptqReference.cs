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
            u = UpperFactorOfInverse(hp, n, percent * mean);
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

    /// <summary>Cholesky of H + λI, explicit inverse, upper Cholesky factor of the inverse; null when not positive definite.</summary>
    private static double[]? UpperFactorOfInverse(double[] h, int n, double lambda)
    {
        var a = (double[])h.Clone();
        for (int i = 0; i < n; i++)
        {
            a[i * n + i] += lambda;
        }

        double[]? l = Cholesky(a, n);
        if (l is null)
        {
            return null;
        }

        // inverse = L⁻ᵀ·L⁻¹ through solving L·Y = I then Lᵀ·X = Y.
        var inverse = new double[n * n];
        for (int c = 0; c < n; c++)
        {
            var y = new double[n];
            for (int i = 0; i < n; i++)
            {
                double s = i == c ? 1 : 0;
                for (int k = 0; k < i; k++)
                {
                    s -= l[i * n + k] * y[k];
                }

                y[i] = s / l[i * n + i];
            }

            for (int i = n - 1; i >= 0; i--)
            {
                double s = y[i];
                for (int k = i + 1; k < n; k++)
                {
                    s -= l[k * n + i] * inverse[k * n + c];
                }

                inverse[i * n + c] = s / l[i * n + i];
            }
        }

        double[]? l2 = Cholesky(inverse, n);
        if (l2 is null)
        {
            return null;
        }

        var u = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = i; j < n; j++)
            {
                u[i * n + j] = l2[j * n + i];
            }
        }

        return u;
    }

    private static double[]? Cholesky(double[] a, int n)
    {
        var l = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            double s = a[j * n + j];
            for (int k = 0; k < j; k++)
            {
                s -= l[j * n + k] * l[j * n + k];
            }

            if (!(s > 0))
            {
                return null;
            }

            l[j * n + j] = Math.Sqrt(s);
            for (int i = j + 1; i < n; i++)
            {
                double t = a[i * n + j];
                for (int k = 0; k < j; k++)
                {
                    t -= l[i * n + k] * l[j * n + k];
                }

                l[i * n + j] = t / l[j * n + j];
            }
        }

        return l;
    }
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

    /// <summary>X = Z·A (Z standard normal, A a random mixing matrix) with <paramref name="outliers"/> channels scaled ×20.</summary>
    public static HessianAccumulator CorrelatedHessian(int columns, int samples, int seed, int outliers = 3)
    {
        DenseTensor z = RandomData.GaussianMatrix(samples, columns, seed);
        DenseTensor mix = RandomData.GaussianMatrix(columns, columns, seed + 1, 1f / MathF.Sqrt(columns));
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

        var random = new Random(seed + 2);
        for (int o = 0; o < outliers; o++)
        {
            int channel = random.Next(columns);
            for (int s = 0; s < samples; s++)
            {
                x[s * columns + channel] *= 20;
            }
        }

        var accumulator = new HessianAccumulator(columns);
        accumulator.Add(x, samples);
        return accumulator;
    }
}
