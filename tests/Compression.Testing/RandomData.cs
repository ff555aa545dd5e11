// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Calibration;
using Compression.Tensors;

namespace Compression.Testing;

/// <summary>Seeded random data: the same seed gives the same values on every machine.</summary>
public static class RandomData
{
    /// <summary>Standard normal values (Box–Muller on a seeded <see cref="Random"/>).</summary>
    public static float[] Gaussian(int count, int seed, float standardDeviation = 1f)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            values[i] = (float)(standardDeviation * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return values;
    }

    /// <summary>A matrix of standard normal values.</summary>
    public static DenseTensor GaussianMatrix(int rows, int columns, int seed, float standardDeviation = 1f) =>
        new(Gaussian(rows * columns, seed, standardDeviation), rows, columns);

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

    /// <summary>A temporary folder deleted when disposed.</summary>
    public static TemporaryDirectory CreateTemporaryDirectory() => new();
}

/// <summary>A folder under the system temp path, removed on dispose.</summary>
public sealed class TemporaryDirectory : IDisposable
{
    internal TemporaryDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "compression-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>A path inside the folder.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <inheritdoc/>
    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A memory map still open on Windows; the OS cleans temp eventually.
        }
    }
}
