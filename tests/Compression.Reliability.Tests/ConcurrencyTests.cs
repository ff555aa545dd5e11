// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Runtime.InteropServices;
using Compression.Calibration;
using Compression.Quantization;
using Compression.Quantization.Rotation;
using Compression.Reliability.Worker;
using Compression.Tensors;
using Xunit.Abstractions;

namespace Compression.Reliability.Tests;

/// <summary>
/// One instance of every compressor of the digest suite (every family, every RTN format), shared by eight threads that
/// start together at a barrier and compress eight different weights: each result equals, byte for byte, the result of
/// the same call made alone. The same for per-thread Hessian accumulators, one shared accumulator read concurrently,
/// and the static tables and caches the formats, the Hadamard code and the GEMM's packing buffers use.
/// </summary>
public sealed class ConcurrencyTests(ITestOutputHelper output)
{
    private const int Threads = 8;
    private const int Rows = 128;
    private const int Columns = 256;

    private static readonly Lazy<(DenseTensor[] Weights, DenseTensor[] Activations, HessianAccumulator Hessian)> s_inputs = new(() =>
    {
        var weights = new DenseTensor[Threads];
        var activations = new DenseTensor[Threads];
        for (int t = 0; t < Threads; t++)
        {
            weights[t] = Gaussian(Rows, Columns, seed: 100 + t, scale: 0.05f * (1 + t));
            activations[t] = Gaussian(128, Columns, seed: 200 + t, scale: 1f + t);
        }

        var hessian = new HessianAccumulator(Columns);
        foreach (DenseTensor x in activations)
        {
            hessian.Add(x);
        }

        return (weights, activations, hessian);
    });

    [Fact]
    public void EveryCompressor_SharedByEightThreads_GivesTheSequentialBytes()
    {
        (DenseTensor[] weights, _, HessianAccumulator hessian) = s_inputs.Value;
        var context = CompressionContext.Default with { InputHessian = hessian };
        var failures = new List<string>();
        int compressors = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach ((string name, ICompressor compressor, bool needsHessian) in DeterminismDigest.Compressors())
        {
            CompressionContext c = needsHessian ? context : CompressionContext.Default;
            // The low-rank family's cost is its serial dense SVD; 32 rows keep it small while the GEMMs, QR and
            // whitening around it still run at full width.
            DenseTensor[] inputs = name.StartsWith("lowrank/", StringComparison.Ordinal) ? weights.Select(w => w.SliceRows(0, 32)).ToArray() : weights;
            byte[][] sequential = inputs.Select(w => DeterminismDigest.Serialize(compressor.Compress(w, c))).ToArray();
            byte[][] concurrent = RunTogether(t => DeterminismDigest.Serialize(compressor.Compress(inputs[t], c)));
            for (int t = 0; t < Threads; t++)
            {
                if (!sequential[t].AsSpan().SequenceEqual(concurrent[t]))
                {
                    failures.Add($"{name} (thread {t})");
                }
            }

            compressors++;
        }

        Assert.True(failures.Count == 0, $"Concurrent results differ from sequential ones: {string.Join(", ", failures)}");
        output.WriteLine($"{compressors} compressors × {Threads} threads identical to sequential calls ({clock.Elapsed.TotalSeconds:F1} s).");
    }

    [Fact]
    public void HessianAccumulators_OnePerThread_EqualSequentialAccumulation()
    {
        (_, DenseTensor[] activations, _) = s_inputs.Value;
        byte[] Accumulate(int t)
        {
            var accumulator = new HessianAccumulator(Columns, new HessianAccumulatorOptions
            {
                Precision = t % 2 == 0 ? AccumulationPrecision.Double : AccumulationPrecision.Single,
            });
            // Each thread adds every batch, in an order of its own, so that the threads' work differs.
            for (int i = 0; i < Threads; i++)
            {
                accumulator.Add(activations[(i + t) % Threads]);
            }

            return Bits(accumulator.GetHessian());
        }

        byte[][] sequential = Enumerable.Range(0, Threads).Select(Accumulate).ToArray();
        byte[][] concurrent = RunTogether(Accumulate);
        for (int t = 0; t < Threads; t++)
        {
            Assert.Equal(sequential[t], concurrent[t]);
        }
    }

    [Fact]
    public void SharedHessianAccumulator_ReadByEightThreads_GivesTheSameMatrix()
    {
        HessianAccumulator hessian = s_inputs.Value.Hessian;
        byte[] expected = Bits(hessian.GetHessian());
        byte[][] concurrent = RunTogether(t => t % 2 == 0 ? Bits(hessian.GetHessian()) : Bits(hessian.GetDiagonal()));
        byte[] diagonal = Bits(hessian.GetDiagonal());
        for (int t = 0; t < Threads; t++)
        {
            Assert.Equal(t % 2 == 0 ? expected : diagonal, concurrent[t]);
        }
    }

    [Fact]
    public void StaticTablesAndCaches_FirstTouchedByEightThreads_GiveTheSequentialBits()
    {
        // The first use of each format, codec table, Hadamard size and GEMM blocking happens here on eight threads at
        // once (this runs in its own process only if it is the first test to touch them, so the comparison is also
        // repeated afterwards): NF4 midpoints, the NVFP4 scale encoder, FP8 decode tables, the GEMM driver's ISA choice
        // and its pooled packing buffers, Hadamard signs and butterflies.
        (DenseTensor[] weights, _, _) = s_inputs.Value;
        NumberFormat[] formats = [NumberFormat.Nf4, NumberFormat.Nvfp4, NumberFormat.Fp8E4M3, NumberFormat.Fp8E5M2, NumberFormat.Mxfp4,
            NumberFormat.Mxfp6E3M2, NumberFormat.Mxint8, NumberFormat.TernaryAbsMean];
        byte[] Work(int t)
        {
            var rtn = new RoundToNearestQuantizer(new RtnOptions { Format = formats[t] });
            DenseTensor rotated = new HadamardRotation(32 << (t % 3), signSeed: t).RotateWeight(weights[t]);
            float[] product = new float[Rows * Rows];
            Numerics.Gemm.Multiply(Numerics.MatrixTranspose.None, Numerics.MatrixTranspose.Transpose, Rows, Rows, Columns, 1f,
                rotated.Span, Columns, weights[t].Span, Columns, 0f, product, Rows);
            return [.. DeterminismDigest.Serialize(rtn.Compress(rotated, CompressionContext.Default)), .. Bits(product)];
        }

        byte[][] concurrent = RunTogether(Work);
        byte[][] sequential = Enumerable.Range(0, Threads).Select(Work).ToArray();
        byte[][] concurrentAgain = RunTogether(Work);
        for (int t = 0; t < Threads; t++)
        {
            Assert.Equal(sequential[t], concurrent[t]);
            Assert.Equal(sequential[t], concurrentAgain[t]);
        }
    }

    /// <summary>Runs <paramref name="work"/>(t) for t = 0…7 on eight dedicated threads released together by a
    /// barrier; rethrows the first failure.</summary>
    internal static T[] RunTogether<T>(Func<int, T> work)
    {
        var results = new T[Threads];
        var errors = new Exception?[Threads];
        using var barrier = new Barrier(Threads);
        Thread[] threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            try
            {
                barrier.SignalAndWait();
                results[t] = work(t);
            }
            catch (Exception e)
            {
                errors[t] = e;
            }
        })).ToArray();
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        if (errors.FirstOrDefault(e => e is not null) is { } error)
        {
            throw new InvalidOperationException("A thread failed.", error);
        }

        return results;
    }

    private static DenseTensor Gaussian(int rows, int columns, int seed, float scale)
    {
        var random = new Random(seed);
        var tensor = new DenseTensor(rows, columns);
        Span<float> span = tensor.Span;
        for (int i = 0; i < span.Length; i++)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            span[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2)) * (1 + i % 7);
        }

        return tensor;
    }

    private static byte[] Bits<T>(T[] values)
        where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}
