// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;
using Compression.Gpu.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.LowRank.Gpu;

/// <summary>
/// The SVD of the small k × k factor of the randomized SVD on the device, by one-sided Jacobi in float64
/// (<see cref="JacobiKernels"/>): the host's managed Golub–Kahan SVD (MathNet) takes about 300 ms at k = 266, which
/// was the whole cost of a 4096² decomposition once the panels stayed on the device.
/// </summary>
/// <remarks>
/// A matrix with an exactly zero singular value has no left vector for it from Jacobi (the column stays zero), so such
/// matrices go to the host SVD, which completes the basis; <see cref="TryDecompose"/> says so.
/// </remarks>
internal static class GpuJacobiSvd
{
    private static readonly object s_round = new();
    private const int MaxSweeps = 40;

    /// <summary>Largest order taken on the device (larger small factors go to the host).</summary>
    public const int MaxOrder = 2048;

    /// <summary>The round-robin tournament of n columns (n + 1 players when n is odd; player n then sits out): for each
    /// of the players − 1 rounds, players / 2 disjoint pairs (smaller index first), every pair once.</summary>
    internal static int[] Schedule(int n)
    {
        int players = n + (n & 1);
        int rounds = players - 1, perRound = players / 2;
        var schedule = new int[rounds * perRound * 2];
        // Circle method: player 0 stays, the others rotate one place per round.
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < perRound; i++)
            {
                int first = i == 0 ? 0 : (round + i - 1) % (players - 1) + 1;
                int second = (round + players - 2 - i) % (players - 1) + 1;
                int at = (round * perRound + i) * 2;
                schedule[at] = Math.Min(first, second);
                schedule[at + 1] = Math.Max(first, second);
            }
        }

        return schedule;
    }

    /// <summary>
    /// A = U·Σ·Vᵀ for the row-major n × n <paramref name="a"/>: U row-major n × n, Σ descending, Vᵀ row-major; false
    /// when a column of A·V is exactly zero (a zero singular value) or the sweeps did not converge, for the host to decompose.
    /// </summary>
    public static bool TryDecompose(GpuContext gpu, double[] a, int n, out (double[] U, double[] S, double[] VT) result,
        CancellationToken cancellationToken)
    {
        result = default;
        if (n < 2 || n > MaxOrder)
        {
            return false;
        }

        int players = n + (n & 1);
        int rounds = players - 1, perRound = players / 2;
        int[] schedule = Schedule(n);

        var columns = new double[(long)n * n];
        var identity = new double[(long)n * n];
        for (int i = 0; i < n; i++)
        {
            identity[(long)i * n + i] = 1;
            for (int j = 0; j < n; j++)
            {
                columns[(long)j * n + i] = a[(long)i * n + j];
            }
        }

        Accelerator accelerator = gpu.Accelerator;
        using MemoryBuffer1D<double, Stride1D.Dense> aDevice = accelerator.Allocate1D(columns);
        using MemoryBuffer1D<double, Stride1D.Dense> vDevice = accelerator.Allocate1D(identity);
        using MemoryBuffer1D<int, Stride1D.Dense> pairs = accelerator.Allocate1D(schedule);
        using MemoryBuffer1D<int, Stride1D.Dense> rotated = accelerator.Allocate1D<int>(1);
        var kernel = gpu.GetOrLoadKernel(s_round, acc =>
            acc.LoadStreamKernel<ArrayView<double>, ArrayView<double>, ArrayView<int>, ArrayView<int>, int, int, int, double>(JacobiKernels.Round));
        double tolerance = n * Math.ScaleB(1.0, -52);
        var flag = new int[1];
        bool converged = false;
        for (int sweep = 0; sweep < MaxSweeps && !converged; sweep++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            rotated.MemSetToZero();
            for (int round = 0; round < rounds; round++)
            {
                kernel(new KernelConfig(perRound, 32), aDevice.View, vDevice.View, pairs.View, rotated.View, n, players, round, tolerance);
            }

            rotated.View.CopyToCPU(flag);
            converged = flag[0] == 0;
        }

        if (!converged)
        {
            return false;
        }

        aDevice.View.CopyToCPU(columns);
        vDevice.View.CopyToCPU(identity);
        var norms = new double[n];
        var order = new int[n];
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                double x = columns[(long)j * n + i];
                sum += x * x;
            }

            norms[j] = Math.Sqrt(sum);
            order[j] = j;
        }

        Array.Sort(order, (x, y) => norms[y].CompareTo(norms[x]));
        // Converged columns are orthogonal relative to their own norms, however small, so only an exactly zero (or
        // subnormal) column lacks a left vector.
        if (!double.IsNormal(norms[order[n - 1]]) || !double.IsFinite(norms[order[0]]))
        {
            return false;
        }

        var u = new double[(long)n * n];
        var s = new double[n];
        var vt = new double[(long)n * n];
        for (int rank = 0; rank < n; rank++)
        {
            int j = order[rank];
            s[rank] = norms[j];
            for (int i = 0; i < n; i++)
            {
                u[(long)i * n + rank] = columns[(long)j * n + i] / norms[j];
                vt[(long)rank * n + i] = identity[(long)j * n + i];
            }
        }

        result = (u, s, vt);
        return true;
    }
}
