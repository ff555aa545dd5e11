// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Runtime.InteropServices;
using Compression.Calibration;
using Compression.LowRank;
using Compression.Quantization.Rotation;
using Compression.Reliability.Worker;
using Compression.Tensors;
using Xunit.Abstractions;

namespace Compression.Reliability.Tests;

/// <summary>One in-process run of the digest suite, shared by the tests that compare against it.</summary>
public sealed class DeterminismDigestFixture
{
    /// <summary>The suite's lines from the test process (its own processor count).</summary>
    public IReadOnlyList<string> Lines { get; } = DeterminismDigest.Run();
}

/// <summary>
/// Same inputs and seeds give the same bits: the whole <see cref="DeterminismDigest"/> suite (every family and format,
/// sizes at which the parallel paths split) twice in this process and in child processes that see 1, 2, 3 and 8
/// processors; and seeded randomness (randomized SVD, Hadamard signs) depends on the seed and nothing else.
/// </summary>
public sealed class DeterminismTests(DeterminismDigestFixture fixture, ITestOutputHelper output) : IClassFixture<DeterminismDigestFixture>
{
    [Fact]
    public void Digest_SecondRunInTheSameProcess_IsBitIdentical()
    {
        IReadOnlyList<string> again = DeterminismDigest.Run();
        Assert.Equal(DeterminismDigest.CaseNames.Count, fixture.Lines.Count);
        Assert.All(fixture.Lines, line => Assert.Matches("^[a-z0-9/:.-]+ [0-9A-F]{64}$", line));
        Assert.Equal(fixture.Lines, again);
        output.WriteLine($"{fixture.Lines.Count} cases identical across two runs in one process.");
    }

    [Fact]
    public void Digest_ChildProcessesWith1238Processors_MatchTheInProcessRun()
    {
        // The four children run one after another: together on two cores they would only slow each other down.
        var outputs = new Dictionary<int, string[]>();
        foreach (int processors in new[] { 1, 2, 3, 8 })
        {
            (int code, string stdout, string stderr) = WorkerProcess.Run(["digest"],
                new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = processors.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                TimeSpan.FromMinutes(3));
            Assert.True(code == 0, stderr);
            Assert.Contains($"processors={processors}", stderr, StringComparison.Ordinal);
            outputs[processors] = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }

        foreach ((int processors, string[] lines) in outputs)
        {
            string[] differing = lines.Except(fixture.Lines).ToArray();
            Assert.True(differing.Length == 0 && lines.Length == fixture.Lines.Count,
                $"With {processors} processors {differing.Length} of {lines.Length} lines differ from the in-process run ({Environment.ProcessorCount} processors): {string.Join("; ", differing.Take(5))}");
        }

        output.WriteLine($"{fixture.Lines.Count} cases identical with 1, 2, 3, 8 and {Environment.ProcessorCount} processors.");
    }

    [Fact]
    public void RandomizedSvd_SameSeed_IsBitIdenticalAndAnotherSeedChangesIt()
    {
        DenseTensor a = DeterminismDigest.Data.Weight.SliceRows(0, 128);
        SingularValueDecomposition first = SingularValueDecomposition.Randomized(a, 24, new RandomizedSvdOptions { Seed = 1 });
        SingularValueDecomposition again = SingularValueDecomposition.Randomized(a, 24, new RandomizedSvdOptions { Seed = 1 });
        SingularValueDecomposition other = SingularValueDecomposition.Randomized(a, 24, new RandomizedSvdOptions { Seed = 2 });
        Assert.Equal(Bits(first.U), Bits(again.U));
        Assert.Equal(Bits(first.SingularValues), Bits(again.SingularValues));
        Assert.Equal(Bits(first.VT), Bits(again.VT));
        // A different sketch gives a different (equally good) approximation: at least the trailing singular values'
        // last bits move.
        Assert.NotEqual(Bits(first.SingularValues), Bits(other.SingularValues));
    }

    [Fact]
    public void LowRankCompressor_RandomizedSolver_SeedDecidesTheBits()
    {
        DenseTensor w = DeterminismDigest.Data.Weight.SliceRows(0, 128);
        byte[] Run(long seed) => DeterminismDigest.Serialize(new LowRankCompressor(new LowRankOptions
        {
            Rank = RankRule.Fixed(16),
            Solver = SvdSolver.Randomized,
            Randomized = new RandomizedSvdOptions { Seed = seed },
        }).Compress(w, CompressionContext.Default));

        Assert.Equal(Run(3), Run(3));
        Assert.NotEqual(Run(3), Run(4));
    }

    [Fact]
    public void HadamardRotation_SameSignSeed_IsBitIdenticalAndAnotherSeedChangesIt()
    {
        DenseTensor w = DeterminismDigest.Data.Weight;
        float[] first = new HadamardRotation(64, signSeed: 9).RotateWeight(w).Span.ToArray();
        float[] again = new HadamardRotation(64, signSeed: 9).RotateWeight(w).Span.ToArray();
        float[] other = new HadamardRotation(64, signSeed: 10).RotateWeight(w).Span.ToArray();
        Assert.Equal(Bits(first), Bits(again));
        Assert.NotEqual(Bits(first), Bits(other));

        // The signs are a pure function of (seed, column): about half negative, and not all equal between seeds.
        var a = new HadamardRotation(64, signSeed: 9);
        var b = new HadamardRotation(64, signSeed: 10);
        int negative = Enumerable.Range(0, 4096).Count(j => a.Sign(j) < 0);
        int disagree = Enumerable.Range(0, 4096).Count(j => a.Sign(j) != b.Sign(j));
        // Binomial(4096, ½) has standard deviation 32: ±256 is eight of them.
        Assert.InRange(negative, 2048 - 256, 2048 + 256);
        Assert.InRange(disagree, 2048 - 256, 2048 + 256);
    }

    [Fact]
    public void HessianAccumulator_OneThreadOrAll_IsBitIdentical()
    {
        DenseTensor x = DeterminismDigest.Data.Activations;
        foreach (AccumulationPrecision precision in new[] { AccumulationPrecision.Double, AccumulationPrecision.Single })
        {
            var serial = new HessianAccumulator(x.Columns, new HessianAccumulatorOptions { Precision = precision, MaxDegreeOfParallelism = 1 });
            var parallel = new HessianAccumulator(x.Columns, new HessianAccumulatorOptions { Precision = precision });
            serial.Add(x.SliceRows(0, 300));
            serial.Add(x.SliceRows(300, 724));
            parallel.Add(x.SliceRows(0, 300));
            parallel.Add(x.SliceRows(300, 724));
            Assert.Equal(Bits(serial.GetHessian()), Bits(parallel.GetHessian()));
        }
    }

    private static byte[] Bits<T>(T[] values)
        where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}
