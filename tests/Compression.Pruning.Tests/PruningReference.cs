using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Pruning.Tests;

/// <summary>
/// Plain sort-based selections the fast pruners are checked against, written from the documented rules alone, plus
/// the shared ways of making test matrices.
/// </summary>
internal static class PruningReference
{
    /// <summary>The documented count: round(s·n), halves to even (Python's round, as torch.nn.utils.prune).</summary>
    public static long PrunedCount(double sparsity, long count) => (long)Math.Round(sparsity * count, MidpointRounding.ToEven);

    /// <summary>
    /// A sparsity spread over [0, 1) from an arbitrary integer. FsCheck's integers are small (|i| ≤ its size, at most
    /// 100), so they are hashed through a seeded generator rather than scaled, which would give only targets near 0.
    /// </summary>
    public static double Sparsity(int choice) => new Random(choice).NextDouble();

    /// <summary>
    /// A Gaussian matrix; with <paramref name="ties"/> its values are rounded to halves, so equal magnitudes, signed
    /// zeros and whole zero groups are common and the tie rules are exercised.
    /// </summary>
    public static DenseTensor Matrix(int rows, int columns, int seed, bool ties)
    {
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed);
        if (ties)
        {
            Span<float> values = w.Span;
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = MathF.Round(values[i] * 2) / 2;   // −0.25 rounds to −0: signed zeros too
            }
        }

        return w;
    }

    public static bool[] Bits(SparsityMask mask)
    {
        var bits = new bool[mask.Rows * mask.Columns];
        for (int i = 0; i < bits.Length; i++)
        {
            bits[i] = mask.IsKept(i / mask.Columns, i % mask.Columns);
        }

        return bits;
    }

    /// <summary>Unstructured: sort (score ascending, index ascending), prune the first round(s·n) of each group.</summary>
    public static bool[] Unstructured(IReadOnlyList<double> scores, int rows, int columns, double sparsity, PruningScope scope)
    {
        var keep = Enumerable.Repeat(true, rows * columns).ToArray();
        IEnumerable<int[]> groups = scope == PruningScope.PerLayer
            ? [Enumerable.Range(0, rows * columns).ToArray()]
            : Enumerable.Range(0, rows).Select(r => Enumerable.Range(r * columns, columns).ToArray());
        foreach (int[] group in groups)
        {
            long pruned = PrunedCount(sparsity, group.Length);
            foreach (int i in group.OrderBy(i => scores[i]).ThenBy(i => i).Take((int)pruned))
            {
                keep[i] = false;
            }
        }

        return keep;
    }

    /// <summary>N:M: in each group of M columns keep the N of highest score, the lower column first among ties.</summary>
    public static bool[] NofM(IReadOnlyList<double> scores, int rows, int columns, int n, int m)
    {
        var keep = new bool[rows * columns];
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < columns; g += m)
            {
                int start = r * columns + g;
                foreach (int i in Enumerable.Range(start, m).OrderByDescending(i => scores[i]).ThenBy(i => i).Take(n))
                {
                    keep[i] = true;
                }
            }
        }

        return keep;
    }

    /// <summary>Block: norms in float64, sort (norm ascending, block index ascending), prune the first round(s·B).</summary>
    public static bool[] Blocks(DenseTensor w, int br, int bc, double sparsity, PruningNorm norm)
    {
        int blockColumns = w.Columns / bc, blocks = w.Rows / br * blockColumns;
        var norms = new double[blocks];
        for (int r = 0; r < w.Rows; r++)
        {
            for (int c = 0; c < w.Columns; c++)
            {
                double v = w[r, c];
                norms[r / br * blockColumns + c / bc] += norm == PruningNorm.L2 ? v * v : Math.Abs(v);
            }
        }

        var pruned = Enumerable.Range(0, blocks).OrderBy(b => norms[b]).ThenBy(b => b).Take((int)PrunedCount(sparsity, blocks)).ToHashSet();
        var keep = new bool[w.Length];
        for (int i = 0; i < keep.Length; i++)
        {
            keep[i] = !pruned.Contains(i / w.Columns / br * blockColumns + i % w.Columns / bc);
        }

        return keep;
    }

    public static double[] Magnitudes(DenseTensor w) => w.Span.ToArray().Select(v => Math.Abs((double)v)).ToArray();

    /// <summary>The weights with the mask applied: what decompression must return, bit for bit.</summary>
    public static DenseTensor Masked(DenseTensor w, SparsityMask mask)
    {
        DenseTensor copy = w.Clone();
        mask.Apply(copy.Span);
        return copy;
    }

    /// <summary>‖(W − Ŵ)Xᵀ‖²/n straight from the activations, in float64.</summary>
    public static double Objective(DenseTensor w, DenseTensor pruned, DenseTensor x)
    {
        double total = 0;
        for (int t = 0; t < x.Rows; t++)
        {
            for (int r = 0; r < w.Rows; r++)
            {
                double dot = 0;
                for (int j = 0; j < w.Columns; j++)
                {
                    dot += ((double)w[r, j] - pruned[r, j]) * x[t, j];
                }

                total += dot * dot;
            }
        }

        return total / x.Rows;
    }

    /// <summary>A context whose Hessian is c·I exactly: X = a·I (one token per feature) gives H = 2a²/c on the diagonal.</summary>
    public static CompressionContext IdentityHessian(int columns, float a = 3f)
    {
        var x = new DenseTensor(columns, columns);
        for (int j = 0; j < columns; j++)
        {
            x[j, j] = a;
        }

        var hessian = new HessianAccumulator(columns);
        hessian.Add(x);
        return new CompressionContext { InputHessian = hessian };
    }

    public static CompressionContext HessianOf(DenseTensor x)
    {
        var hessian = new HessianAccumulator(x.Columns);
        hessian.Add(x);
        return new CompressionContext { InputHessian = hessian };
    }
}
