// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using System.Security.Cryptography;
using System.Runtime.InteropServices;
using Compression.Calibration;
using Compression.Distillation;
using Compression.LowRank;
using Compression.Pruning;
using Compression.Quantization;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using Xunit.Abstractions;

namespace Compression.Reliability.Tests;

/// <summary>
/// Every long operation, cancelled from a dedicated thread shortly after it starts (never CancelAfter: its timer runs
/// on the thread pool, which the operations' Parallel.For loops can starve), throws an OperationCanceledException that
/// carries the token within <see cref="Bound"/> of Cancel(), and leaves its inputs untouched and no result behind.
/// </summary>
[Collection(CancellationLatencyCollection.Name)]
public sealed class CancellationTests(ITestOutputHelper output)
{
    /// <summary>Cancel() to the exception. The checks sit once per column block, row chunk, iteration, objective
    /// evaluation or Parallel.For task: at most about 0.5 G multiply-adds between two checks (the first 128-column
    /// block of a 2048-order Cholesky), a tenth of a second on an idle core. Measured on the shared two-core
    /// development machine: at most 1.1 s at a load average of 23 and 3.7 s at a load average of 300 (150 runnable
    /// threads per core); 5 s keeps the test meaningful (an unchecked phase of these sizes takes tens of seconds
    /// there) without failing on a starved CI machine.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    private static readonly Lazy<HessianAccumulator> s_wideHessian = new(() =>
    {
        // 2048 features from 256 rows: rank-deficient, which GPTQ and SparseGPT damp; enough for their full sweep.
        var accumulator = new HessianAccumulator(2048);
        accumulator.Add(Gaussian(256, 2048, seed: 1));
        return accumulator;
    });

    [Fact]
    public void Gptq_2048Square_StopsWithinTheBound()
    {
        DenseTensor weight = Gaussian(2048, 2048, seed: 2, scale: 0.02f);
        var gptq = new GptqQuantizer(GptqOptions.W4Group128 with { ActOrder = true });
        HessianAccumulator hessian = s_wideHessian.Value;   // built before the clock starts
        Measure("GPTQ 2048×2048 int4 g128 act-order", weight, token =>
            gptq.Compress(weight, CompressionContext.Default with { InputHessian = hessian, CancellationToken = token }), delayMs: 300);
    }

    [Fact]
    public void GptqWithHadamardRotation_2048Square_StopsWithinTheBound()
    {
        DenseTensor weight = Gaussian(2048, 2048, seed: 3, scale: 0.02f);
        var gptq = new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.Mxfp4, Rotation = new HadamardRotationParameters(32, SignSeed: 1) });
        HessianAccumulator hessian = s_wideHessian.Value;
        Measure("GPTQ 2048×2048 MXFP4 + Hadamard", weight, token =>
            gptq.Compress(weight, CompressionContext.Default with { InputHessian = hessian, CancellationToken = token }), delayMs: 300);
    }

    [Fact]
    public void SparseGpt_2048Square_StopsWithinTheBound()
    {
        DenseTensor weight = Gaussian(2048, 2048, seed: 4, scale: 0.02f);
        var pruner = new SparseGptPruner(SparseGptOptions.Unstructured50);
        HessianAccumulator hessian = s_wideHessian.Value;
        Measure("SparseGPT 2048×2048 50 %", weight, token =>
            pruner.Compress(weight, CompressionContext.Default with { InputHessian = hessian, CancellationToken = token }), delayMs: 300);
    }

    [Fact]
    public void RandomizedSvd_2048Square_StopsWithinTheBound()
    {
        DenseTensor matrix = Gaussian(2048, 2048, seed: 5);
        Measure("randomized SVD 2048×2048 rank 256", matrix, token =>
            SingularValueDecomposition.Randomized(matrix, 256, new RandomizedSvdOptions { PowerIterations = 4 }, token), delayMs: 200);
    }

    [Fact]
    public void ExactSvd_Tall4096x384_StopsWithinTheBound()
    {
        // A tall matrix: the Householder QR (checked per panel) does most of the work; the 384×384 core's dense SVD
        // (MathNet, not interruptible) is the remainder and bounds the latency for square inputs.
        DenseTensor matrix = Gaussian(4096, 384, seed: 6);
        Measure("exact SVD 4096×384", matrix, token => SingularValueDecomposition.Exact(matrix, token), delayMs: 50);
    }

    [Fact]
    public void LowRankCompressor_Exact_StopsWithinTheBound()
    {
        DenseTensor weight = Gaussian(384, 4096, seed: 7);
        var compressor = new LowRankCompressor(new LowRankOptions { Rank = RankRule.Fixed(64), Solver = SvdSolver.Exact });
        Measure("low-rank (exact SVD) 384×4096", weight, token =>
            compressor.Compress(weight, CompressionContext.Default with { CancellationToken = token }), delayMs: 50);
    }

    [Fact]
    public void LayerReconstructor_StopsWithinTheBound()
    {
        DenseTensor weight = Gaussian(1024, 1024, seed: 8, scale: 0.02f);
        var hessian = new HessianAccumulator(1024);
        hessian.Add(Gaussian(512, 1024, seed: 9));
        var reconstructing = new ReconstructingCompressor(new RoundToNearestQuantizer(RtnOptions.W4Group128 with { Format = NumberFormat.Int2 }),
            new LayerReconstructionOptions { MaxIterations = 500, RelativeTolerance = 0 });
        Measure("layer reconstruction 1024×1024 int2", weight, token =>
            reconstructing.Compress(weight, CompressionContext.Default with { InputHessian = hessian, CancellationToken = token }), delayMs: 300);
    }

    [Fact]
    public void RoundToNearest_Big_StopsWithinTheBound()
    {
        DenseTensor weight = Gaussian(4096, 4096, seed: 10);
        // Cancelled during the clipping grid search, most of the run (it once ignored the token: 46 s to stop).
        var rtn = new RoundToNearestQuantizer(RtnOptions.W4Group128 with { Clipping = ClippingSearch.Default });
        Measure("RTN 4096×4096 int4 g128 + clipping search", weight, token =>
            rtn.Compress(weight, CompressionContext.Default with { CancellationToken = token }), delayMs: 300);
    }

    [Fact]
    public void HadamardRotation_BigWeight_StopsWithinTheBound()
    {
        DenseTensor weight = Gaussian(4096, 4096, seed: 11);
        var rotation = new HadamardRotation(4096, signSeed: 2);
        Measure("Hadamard rotation 4096×4096, block 4096", weight, token => rotation.RotateWeight(weight, token), delayMs: 5);
    }

    [Fact]
    public void HessianAccumulatorAdd_ManyRows_StopsWithinTheBoundAndIsInvalidUntilReset()
    {
        DenseTensor activations = Gaussian(8192, 2048, seed: 12);
        var accumulator = new HessianAccumulator(2048);
        Measure("HessianAccumulator.Add 8192×2048", activations, token => accumulator.Add(activations, token), delayMs: 150);

        // Partly updated sums are not a Hessian of any batch: every read and write refuses until Reset().
        Assert.Throws<InvalidOperationException>(() => accumulator.GetHessian());
        Assert.Throws<InvalidOperationException>(() => accumulator.GetDiagonal());
        Assert.Throws<InvalidOperationException>(() => accumulator.Add(activations.SliceRows(0, 4)));
        accumulator.Reset();
        accumulator.Add(activations.SliceRows(0, 4));
        var fresh = new HessianAccumulator(2048);
        fresh.Add(activations.SliceRows(0, 4));
        Assert.Equal(fresh.GetHessian(), accumulator.GetHessian());
    }

    [Fact]
    public void HessianAccumulatorAdd_AlreadyCancelled_LeavesTheAccumulatorUnchanged()
    {
        DenseTensor activations = Gaussian(64, 128, seed: 13);
        var accumulator = new HessianAccumulator(128);
        accumulator.Add(activations);
        double[] before = accumulator.GetHessian();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        OperationCanceledException e = Assert.ThrowsAny<OperationCanceledException>(() => accumulator.Add(activations, cts.Token));
        Assert.Equal(cts.Token, e.CancellationToken);
        Assert.Equal(64, accumulator.SampleCount);
        Assert.Equal(before, accumulator.GetHessian());
    }

    /// <summary>Runs <paramref name="operation"/> on this thread; a dedicated thread cancels it
    /// <paramref name="delayMs"/> after the start. Asserts the exception, its token, the latency bound and that the
    /// input is bit for bit what it was; writes the latency to the test output.</summary>
    private void Measure(string name, DenseTensor input, Action<CancellationToken> operation, int delayMs)
    {
        byte[] inputHash = SHA256.HashData(MemoryMarshal.AsBytes(input.Span));
        using var cts = new CancellationTokenSource();
        using var go = new ManualResetEventSlim();
        long cancelledAt = 0;
        var canceller = new Thread(() =>
        {
            go.Wait();
            Thread.Sleep(delayMs);
            cancelledAt = Stopwatch.GetTimestamp();
            cts.Cancel();
        })
        { IsBackground = true, Priority = ThreadPriority.AboveNormal, Name = "canceller" };
        canceller.Start();

        OperationCanceledException? caught = null;
        long start = Stopwatch.GetTimestamp();
        go.Set();
        try
        {
            operation(cts.Token);
        }
        catch (OperationCanceledException e)
        {
            caught = e;
        }

        long caughtAt = Stopwatch.GetTimestamp();
        canceller.Join();
        Assert.True(caught is not null,
            $"{name} finished in {Stopwatch.GetElapsedTime(start, caughtAt).TotalMilliseconds:F0} ms, before the cancellation at {delayMs} ms.");
        Assert.Equal(cts.Token, caught.CancellationToken);
        TimeSpan latency = Stopwatch.GetElapsedTime(cancelledAt, caughtAt);
        output.WriteLine($"{name}: cancelled {Stopwatch.GetElapsedTime(start, cancelledAt).TotalMilliseconds:F0} ms after the start, stopped {latency.TotalMilliseconds:F1} ms later");
        Assert.True(latency < Bound, $"{name} took {latency.TotalMilliseconds:F0} ms to stop (bound {Bound.TotalMilliseconds:F0} ms); it stopped at {caught.StackTrace}");
        Assert.Equal(inputHash, SHA256.HashData(MemoryMarshal.AsBytes(input.Span)));
    }

    /// <summary>Roughly Gaussian values (a sum of four uniforms, variance 1), fast enough for 32 M of them: these tests
    /// need large seeded inputs, not exact normality.</summary>
    private static DenseTensor Gaussian(int rows, int columns, int seed, float scale = 1f)
    {
        var tensor = new DenseTensor(rows, columns);
        Span<float> span = tensor.Span;
        ulong state = (ulong)seed * 0x9E3779B97F4A7C15UL + 1;
        for (int i = 0; i < span.Length; i++)
        {
            // xorshift64*: four 16-bit uniforms from one draw.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            ulong z = state * 0x2545F4914F6CDD1DUL;
            float sum = (z & 0xFFFF) + ((z >> 16) & 0xFFFF) + ((z >> 32) & 0xFFFF) + (z >> 48);
            span[i] = scale * (sum / 65536f - 2f) * 1.7320508f;
        }

        return tensor;
    }
}

/// <summary>The cancellation tests run alone (after the parallel test classes), so that the latency they measure is
/// the operations' own and not the other test classes' load.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CancellationLatencyCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Cancellation latency";
}
