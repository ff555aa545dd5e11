using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Distillation;

/// <summary>
/// Float64 scalar references for the distillation losses, written with plain loops over row-major arrays [rows, width]
/// (rows = positions), independent of TorchSharp; and seeded data for them.
/// </summary>
internal static class LossReference
{
    /// <summary>Gaussian values × <paramref name="scale"/> (Box–Muller on a seeded Random).</summary>
    public static double[] Gaussian(int count, int seed, double scale = 1)
    {
        var random = new Random(seed);
        var values = new double[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            values[i] = scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }

        return values;
    }

    /// <summary>A seeded boolean mask with roughly a third of the entries false (entry 0 always true).</summary>
    public static bool[] Mask(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => i == 0 || random.NextDouble() > 0.33).ToArray();
    }

    public static Tensor ToTensor(double[] values, long[] shape, ScalarType dtype = ScalarType.Float64) =>
        dtype == ScalarType.Float64 ? tensor(values, shape) : tensor(values.Select(v => (float)v).ToArray(), shape);

    /// <summary>log softmax(z/T) of one row, shifted by the maximum so that no exponential overflows.</summary>
    public static double[] LogSoftmax(ReadOnlySpan<double> z, double temperature)
    {
        double max = double.NegativeInfinity;
        foreach (double v in z)
        {
            max = Math.Max(max, v / temperature);
        }

        double sum = 0;
        foreach (double v in z)
        {
            sum += Math.Exp(v / temperature - max);
        }

        double logSum = max + Math.Log(sum);
        var result = new double[z.Length];
        for (int i = 0; i < z.Length; i++)
        {
            result[i] = z[i] / temperature - logSum;
        }

        return result;
    }

    /// <summary>The mean of per-row values over the rows where the mask is true (all without a mask); 0 when none.</summary>
    public static double MaskedMean(int rows, Func<int, double> perRow, bool[]? mask)
    {
        double sum = 0;
        int count = 0;
        for (int r = 0; r < rows; r++)
        {
            if (mask is null || mask[r])
            {
                sum += perRow(r);
                count++;
            }
        }

        return count == 0 ? 0 : sum / count;
    }

    /// <summary>T²·mean Σ p_a (log p_a − log p_b), p = softmax(row/T): KL(a ‖ b).</summary>
    public static double Kl(double[] a, double[] b, int width, double temperature, bool[]? mask) =>
        temperature * temperature * MaskedMean(a.Length / width, r =>
        {
            double[] la = LogSoftmax(a.AsSpan(r * width, width), temperature), lb = LogSoftmax(b.AsSpan(r * width, width), temperature);
            double kl = 0;
            for (int v = 0; v < width; v++)
            {
                kl += Math.Exp(la[v]) * (la[v] - lb[v]);
            }

            return kl;
        }, mask);

    /// <summary>T²·mean [β KL(p_T ‖ m) + (1 − β) KL(p_S ‖ m)], m = β p_T + (1 − β) p_S.</summary>
    public static double Jsd(double[] student, double[] teacher, int width, double beta, double temperature, bool[]? mask) =>
        temperature * temperature * MaskedMean(student.Length / width, r =>
        {
            double[] ls = LogSoftmax(student.AsSpan(r * width, width), temperature), lt = LogSoftmax(teacher.AsSpan(r * width, width), temperature);
            double sum = 0;
            for (int v = 0; v < width; v++)
            {
                // log m by log-add-exp, so that a probability that underflows in one model cannot make log m infinite.
                double x = Math.Log(beta) + lt[v], y = Math.Log(1 - beta) + ls[v];
                double logM = Math.Max(x, y) + Math.Log(1 + Math.Exp(-Math.Abs(x - y)));
                sum += beta * Math.Exp(lt[v]) * (lt[v] - logM) + (1 - beta) * Math.Exp(ls[v]) * (ls[v] - logM);
            }

            return sum;
        }, mask);

    /// <summary>mean −log softmax(row)[label] over the rows whose label is not ignored.</summary>
    public static double CrossEntropy(double[] logits, long[] labels, int width, long ignoreIndex) =>
        MaskedMean(labels.Length, r => -LogSoftmax(logits.AsSpan(r * width, width), 1)[labels[r]], labels.Select(l => l != ignoreIndex).ToArray());

    /// <summary>mean over rows of the mean squared difference.</summary>
    public static double Mse(double[] a, double[] b, int width, bool[]? mask) =>
        MaskedMean(a.Length / width, r =>
        {
            double sum = 0;
            for (int i = 0; i < width; i++)
            {
                double d = a[r * width + i] - b[r * width + i];
                sum += d * d;
            }

            return sum / width;
        }, mask);

    /// <summary>mean over rows of 1 − a·b / (‖a‖‖b‖).</summary>
    public static double Cosine(double[] a, double[] b, int width, bool[]? mask) =>
        MaskedMean(a.Length / width, r =>
        {
            double dot = 0, aa = 0, bb = 0;
            for (int i = 0; i < width; i++)
            {
                double x = a[r * width + i], y = b[r * width + i];
                (dot, aa, bb) = (dot + x * y, aa + x * x, bb + y * y);
            }

            return 1 - dot / Math.Sqrt(aa * bb);
        }, mask);

    /// <summary>mean over rows of Σ_j t_j (log t_j − log s_j), skipping t_j = 0.</summary>
    public static double RowKl(double[] student, double[] teacher, int width) =>
        MaskedMean(student.Length / width, r =>
        {
            double sum = 0;
            for (int j = 0; j < width; j++)
            {
                double t = teacher[r * width + j];
                if (t > 0)
                {
                    sum += t * (Math.Log(t) - Math.Log(student[r * width + j]));
                }
            }

            return sum;
        }, null);

    /// <summary>Causal softmax rows of scores [batch·heads, time, time] (−∞ above the diagonal), flattened.</summary>
    public static double[] CausalSoftmax(double[] scores, int time)
    {
        var result = new double[scores.Length];
        for (int row = 0; row < scores.Length / time; row++)
        {
            int query = row % time;
            double[] l = LogSoftmax(scores.AsSpan(row * time, query + 1), 1);
            for (int j = 0; j <= query; j++)
            {
                result[row * time + j] = Math.Exp(l[j]);
            }
        }

        return result;
    }
}
