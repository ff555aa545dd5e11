using Compression.Pruning.Storage;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Pruning.Tests;

/// <summary>Random sparse matrices for the storage and kernel tests, and the file round trip they share.</summary>
internal static class SparseCases
{
    public static readonly CompressedTensorSerializer Serializer =
        SemiStructuredTensor.Register(BsrTensor.Register(CsrTensor.Register(PrunedTensor.Register(CompressedTensorSerializer.Default))));

    /// <summary>
    /// A pruned matrix whose rows each draw their own density from {0, 0.1, 0.5, 0.9, 1} (so empty and full rows
    /// occur), with a few kept exact zeros and negative zeros.
    /// </summary>
    public static PrunedTensor RandomPruned(int rows, int columns, int seed)
    {
        var random = new Random(seed);
        double[] densities = [0, 0.1, 0.5, 0.9, 1];
        var keep = new bool[rows * columns];
        for (int r = 0; r < rows; r++)
        {
            double density = densities[random.Next(densities.Length)];
            for (int c = 0; c < columns; c++)
            {
                keep[r * columns + c] = random.NextDouble() < density;
            }
        }

        return Pruned(rows, columns, keep, random);
    }

    /// <summary>A pruned matrix with at most <paramref name="n"/> kept weights in every group of <paramref name="m"/> columns.</summary>
    public static PrunedTensor RandomSemiStructured(int rows, int groups, int n, int m, int seed)
    {
        var random = new Random(seed);
        int columns = groups * m;
        var keep = new bool[rows * columns];
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < groups; g++)
            {
                int count = random.Next(n + 1);                          // 0 … n: some groups need padding
                foreach (int c in Enumerable.Range(0, m).OrderBy(_ => random.Next()).Take(count))
                {
                    keep[r * columns + g * m + c] = true;
                }
            }
        }

        return Pruned(rows, columns, keep, random);
    }

    /// <summary>A pruned matrix whose kept weights fill whole blocks, each block kept with probability <paramref name="density"/>.</summary>
    public static PrunedTensor RandomBlocks(int blockRowCount, int blockColumnCount, int blockRows, int blockColumns, double density, int seed)
    {
        var random = new Random(seed);
        int rows = blockRowCount * blockRows, columns = blockColumnCount * blockColumns;
        var keep = new bool[rows * columns];
        for (int br = 0; br < blockRowCount; br++)
        {
            for (int bc = 0; bc < blockColumnCount; bc++)
            {
                if (random.NextDouble() < density)
                {
                    for (int i = 0; i < blockRows; i++)
                    {
                        for (int j = 0; j < blockColumns; j++)
                        {
                            keep[(br * blockRows + i) * columns + bc * blockColumns + j] = true;
                        }
                    }
                }
            }
        }

        return Pruned(rows, columns, keep, random);
    }

    private static PrunedTensor Pruned(int rows, int columns, bool[] keep, Random random)
    {
        float[] values = RandomData.Gaussian(rows * columns, random.Next());
        for (int i = 0; i < values.Length; i++)
        {
            int special = random.Next(16);
            values[i] = special == 0 ? 0f : special == 1 ? -0f : values[i];  // kept zeros must survive every layout
        }

        SparsityMask mask = SparsityMask.FromPredicate(rows, columns, keep, static (k, i) => k[i]);
        return new PrunedTensor(new DenseTensor(values, rows, columns), mask);
    }

    /// <summary>Writes <paramref name="tensor"/> to a file and reads it back; also returns the bytes of its parts.</summary>
    public static (CompressedTensor Read, long PartBytes) RoundTrip(CompressedTensor tensor)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        Serializer.Write(writer, "w", tensor);
        writer.Save(folder.File("w.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("w.safetensors"));
        long bytes = checkpoint.Tensors.Where(t => t.Name.StartsWith("w.", StringComparison.Ordinal)).Sum(t => t.ByteLength);
        return (Serializer.Read(checkpoint, "w"), bytes);
    }

    public static bool SameMask(SparsityMask a, SparsityMask b) =>
        a.Rows == b.Rows && a.Columns == b.Columns && a.ToBytes().AsSpan().SequenceEqual(b.ToBytes());

    /// <summary>Whether every position of <paramref name="inner"/> is also in <paramref name="outer"/>.</summary>
    public static bool IsSubset(SparsityMask inner, SparsityMask outer)
    {
        byte[] a = inner.ToBytes(), b = outer.ToBytes();
        return a.Zip(b).All(p => (p.First & ~p.Second) == 0);
    }
}
