using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Compression.LowRank;
using Compression.Tensors;
using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.Benchmarks;

/// <summary>
/// Exact and randomized SVD (rank 128) of a 1024×1024 float32 matrix with a decaying spectrum (<see cref="SvdData"/>):
/// ours against MathNet's dense SVD called directly (the baseline), TorchSharp's <c>torch.linalg.svd</c> and
/// <c>torch.svd_lowrank</c>'s algorithm (<see cref="TorchLowRank"/>), all on the same values in the same run.
/// Accuracy (error of the rank-128 truncation against the optimum) is printed by <c>svd-check</c> (<see cref="SvdCheck"/>), not measured here.
/// </summary>
/// <remarks>The 4096×4096 case is <see cref="SvdLargeBench"/>: MathNet's managed SVD (and so our exact route, which
/// calls it) takes far longer than BenchmarkDotNet's repeated invocations allow there.</remarks>
[Config(typeof(SvdBenchConfig))]
public class SvdBench : SvdBenchBase
{
    [GlobalSetup]
    public void Setup() => Prepare(1024, mathNet: true);

    /// <summary>MathNet's dense SVD (managed provider, single-threaded, full U and Vᵀ) of the float32 matrix.</summary>
    [Benchmark(Baseline = true)]
    public MathNet.Numerics.LinearAlgebra.Factorization.Svd<float> MathNetSvd() => MathNetInput.Svd(computeVectors: true);

    /// <summary>Ours, every triplet (float64; the square case goes straight to MathNet's float64 SVD).</summary>
    [Benchmark]
    public SingularValueDecomposition Exact() => SingularValueDecomposition.Exact(Input);

    [Benchmark]
    public SingularValueDecomposition Randomized() => RandomizedCore();

    [Benchmark]
    public double TorchLinalgSvd() => TorchSvdCore();

    [Benchmark]
    public double TorchSvdLowrank() => TorchLowrankCore();
}

/// <summary>
/// The 4096×4096 case of <see cref="SvdBench"/> for the methods that finish in seconds. MathNet's SVD and our exact
/// route are run once with a Stopwatch by <c>svd-check 4096</c> instead (benchmarks/README.md: on the 2-core VM
/// MathNet's float32 SVD gave up with a NonConvergenceException after 28 minutes); here the baseline is
/// <c>torch.linalg.svd</c>, the fastest exact SVD at hand.
/// </summary>
[Config(typeof(SvdBenchConfig))]
public class SvdLargeBench : SvdBenchBase
{
    [GlobalSetup]
    public void Setup() => Prepare(4096, mathNet: false);

    [Benchmark]
    public SingularValueDecomposition Randomized() => RandomizedCore();

    [Benchmark(Baseline = true)]
    public double TorchLinalgSvd() => TorchSvdCore();

    [Benchmark]
    public double TorchSvdLowrank() => TorchLowrankCore();
}

/// <summary>
/// One warm-up and three measured invocations (the exact SVDs take seconds each), in the host process: BenchmarkDotNet's
/// generated project has no reference to the libtorch-cpu-linux-x64 package, so TorchSharp refuses to start there
/// ("doesn't contain a reference to libtorch-cpu-linux-x64"); the host's own output carries libtorch and the patched
/// shim (docs/torchsharp-native.md).
/// </summary>
public sealed class SvdBenchConfig : ManualConfig
{
    public SvdBenchConfig() =>
        AddJob(Job.Default.WithStrategy(RunStrategy.Monitoring).WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3)
            .WithToolchain(new InProcessEmitToolchain(TimeSpan.FromMinutes(30), logOutput: true)));
}

/// <summary>Inputs and the calls shared by both SVD benchmark classes.</summary>
public abstract class SvdBenchBase
{
    // torch.svd_lowrank's q is the whole sketch: rank + our default oversampling of 10.
    private static readonly int TorchSketch = SvdData.Rank + RandomizedSvdOptions.Default.Oversampling;

    private Tensor _torchInput = null!;

    protected DenseTensor Input { get; private set; } = null!;

    protected Matrix<float> MathNetInput { get; private set; } = null!;

    protected void Prepare(int n, bool mathNet)
    {
        Input = SvdData.Matrix(n);
        if (mathNet)
        {
            MathNetInput = Input.ToMathNetMatrix();
        }

        SvdData.SetTorchThreads();
        _torchInput = torch.tensor(Input.Span.ToArray(), [n, n], ScalarType.Float32);
        // Proof that libtorch really loaded (the Debian 12 shim fix): the native libraries mapped into this process.
        string[] natives = File.ReadLines("/proc/self/maps")
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")
            .Where(path => path.Contains("libtorch_cpu.so") || path.Contains("libLibTorchSharp.so"))
            .Distinct()
            .ToArray();
        Console.WriteLine($"// SVD {n}×{n}: torch threads {torch.get_num_threads()}, loaded {string.Join(", ", natives)}");
    }

    [GlobalCleanup]
    public void Cleanup() => _torchInput?.Dispose();

    protected SingularValueDecomposition RandomizedCore() =>
        SingularValueDecomposition.Randomized(Input, SvdData.Rank, RandomizedSvdOptions.Default);

    protected double TorchSvdCore()
    {
        using var scope = NewDisposeScope();
        (Tensor _, Tensor s, Tensor _) = torch.linalg.svd(_torchInput, fullMatrices: false);
        return s[0].ToDouble();
    }

    protected double TorchLowrankCore()
    {
        using var scope = NewDisposeScope();
        (Tensor _, Tensor s, Tensor _) = TorchLowRank.Svd(_torchInput, TorchSketch, powerIterations: 2);
        return s[0].ToDouble();
    }
}
