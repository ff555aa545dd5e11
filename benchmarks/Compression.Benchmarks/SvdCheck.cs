using System.Diagnostics;
using Compression.LowRank;
using Compression.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.Benchmarks;

/// <summary>
/// <c>svd-check &lt;n&gt; [method …]</c>: one Stopwatch-timed call of each SVD method of <see cref="SvdBench"/> on the
/// same n×n matrix, each followed by the relative Frobenius error of its rank-128 truncation beside the optimum
/// (from torch.linalg.svdvals in float64), so the speed figures can be read with their accuracy. Methods:
/// mathnet, exact, randomized, torch-svd, torch-lowrank (all by default). Also the single timing of the slow
/// exact methods at 4096, which BenchmarkDotNet cannot repeat in reasonable time.
/// </summary>
internal static class SvdCheck
{
    private static readonly string[] AllMethods = ["mathnet", "exact", "randomized", "torch-svd", "torch-lowrank"];

    public static void Run(string[] args)
    {
        int n = int.Parse(args[0]);
        string[] methods = args.Length > 1 ? args[1..] : AllMethods;
        const int k = SvdData.Rank;
        SvdData.SetTorchThreads();
        var clock = Stopwatch.StartNew();
        DenseTensor a = SvdData.Matrix(n);
        Console.WriteLine($"{n}×{n} float32, rank {k}: matrix made in {clock.Elapsed.TotalSeconds:F1} s; torch threads {torch.get_num_threads()}, {Environment.ProcessorCount} processors");

        torch.random.manual_seed(0);
        using Tensor input = torch.tensor(a.Span.ToArray(), [n, n], ScalarType.Float32);
        clock.Restart();
        double[] sigma;
        using (Tensor input64 = input.to(ScalarType.Float64))
        using (Tensor values = torch.linalg.svdvals(input64))
        {
            sigma = values.data<double>().ToArray();
        }

        double optimal = SvdData.OptimalError(sigma, k);
        Console.WriteLine($"reference singular values (torch.linalg.svdvals, float64) in {clock.Elapsed.TotalSeconds:F1} s: " +
            $"σ1 = {sigma[0]:G4}, σ{k} = {sigma[k - 1]:G4}, σ{k + 1} = {sigma[k]:G4}, σ{n} = {sigma[^1]:G4}; optimal rank-{k} error {optimal:F6}");

        foreach (string method in methods)
        {
            clock.Restart();
            (double[] u, int ldu, double[] s, double[] vt) = method switch
            {
                "mathnet" => MathNet(a),
                "exact" => Ours(SingularValueDecomposition.Exact(a)),
                "randomized" => Ours(SingularValueDecomposition.Randomized(a, k, RandomizedSvdOptions.Default)),
                "torch-svd" => TorchSvd(input),
                "torch-lowrank" => TorchLowrank(input),
                _ => throw new ArgumentException($"Unknown method '{method}'; expected one of {string.Join(", ", AllMethods)}."),
            };
            double seconds = clock.Elapsed.TotalSeconds;
            double error = SvdData.RelativeError(a, u, ldu, s, vt, k);
            double worstSigma = 0;
            for (int i = 0; i < k; i++)
            {
                worstSigma = Math.Max(worstSigma, Math.Abs(s[i] - sigma[i]) / sigma[i]);
            }

            Console.WriteLine($"{method,-14} {seconds,9:F3} s   rank-{k} error {error:F6} = {error / optimal:F6} × optimal   " +
                $"max relative error of σ1..σ{k} {worstSigma:E2}");
        }
    }

    private static (double[], int, double[], double[]) Ours(SingularValueDecomposition svd)
    {
        SingularValueDecomposition t = svd.Truncate(SvdData.Rank);
        return (t.U, t.Rank, t.SingularValues, t.VT);
    }

    private static (double[], int, double[], double[]) MathNet(DenseTensor a)
    {
        var svd = a.ToMathNetMatrix().Svd(computeVectors: true);
        int m = a.Rows, n = a.Columns, k = SvdData.Rank;
        double[] u = new double[m * k];
        double[] vt = new double[k * n];
        double[] s = new double[k];
        for (int j = 0; j < k; j++)
        {
            s[j] = svd.S[j];
            for (int i = 0; i < m; i++)
            {
                u[i * k + j] = svd.U[i, j];
            }

            for (int c = 0; c < n; c++)
            {
                vt[j * n + c] = svd.VT[j, c];
            }
        }

        return (u, k, s, vt);
    }

    private static (double[], int, double[], double[]) TorchSvd(Tensor input)
    {
        using var scope = NewDisposeScope();
        (Tensor u, Tensor s, Tensor vh) = torch.linalg.svd(input, fullMatrices: false);
        return FromTorch(u, s, vh);
    }

    private static (double[], int, double[], double[]) TorchLowrank(Tensor input)
    {
        using var scope = NewDisposeScope();
        (Tensor u, Tensor s, Tensor v) = TorchLowRank.Svd(input, SvdData.Rank + RandomizedSvdOptions.Default.Oversampling, powerIterations: 2);
        return FromTorch(u, s, v.t());
    }

    // U m×q, S q, Vᵀ q×n (any q ≥ k): the leading k triplets as float64 arrays.
    private static (double[], int, double[], double[]) FromTorch(Tensor u, Tensor s, Tensor vt)
    {
        int k = SvdData.Rank;
        double[] Read(Tensor t) => t.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        return (Read(u[.., ..k]), k, Read(s[..k]), Read(vt[..k, ..]));
    }
}
