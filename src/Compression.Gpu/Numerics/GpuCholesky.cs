// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Gpu.Kernels;
using Compression.Gpu.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Gpu.Numerics;

/// <summary>
/// Float64 Cholesky on the accelerator, for GPTQ-style solvers that need U, the upper triangular factor with
/// UᵀU = (A + λI)⁻¹, without forming the inverse.
/// </summary>
/// <remarks>
/// The same route as the CPU's <c>Compression.Numerics.Cholesky.TryUpperFactorOfInverse</c>: with P the reversal,
/// P(A + λI)P = L̃L̃ᵀ and U = P·L̃⁻¹·P. The factorization is blocked right-looking (panels of 32: the diagonal block
/// in shared memory, the panel by substitution, the trailing update as a tiled float64 product); the triangular
/// inverse inverts the 32-row diagonal blocks, then joins halves recursively with two products each
/// (L⁻¹ = [L₁₁⁻¹ 0; −L₂₂⁻¹·L₂₁·L₁₁⁻¹ L₂₂⁻¹]). Everything is float64; only the result is rounded to float32.
/// </remarks>
public static class GpuCholesky
{
    private static readonly object s_reverse = new(), s_diagonal = new(), s_panel = new(), s_trailing = new(), s_zero = new(), s_leaves = new(),
        s_multiply = new(), s_upper = new();

    /// <summary>The largest order supported (n² must fit a 32-bit index).</summary>
    public const int MaxOrder = 46340;

    /// <summary>
    /// Computes U (n × n, row-major, float32, zero below the diagonal) with UᵀU = (A + λI)⁻¹ for the symmetric
    /// <paramref name="a"/> (n × n, float64, row-major; both triangles must hold the matrix). Returns false when
    /// A + λI is not numerically positive definite (a pivot not positive, or a value not finite); U is then undefined.
    /// </summary>
    /// <exception cref="ArgumentException">A view is shorter than n², or n is out of range.</exception>
    public static bool TryUpperFactorOfInverse(GpuContext gpu, ArrayView<double> a, int n, double lambda, ArrayView<float> upper)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        if (n < 0 || n > MaxOrder)
        {
            throw new ArgumentOutOfRangeException(nameof(n), n, $"The order must lie in [0, {MaxOrder}].");
        }

        long cells = (long)n * n;
        if (a.Length < cells || upper.Length < cells)
        {
            throw new ArgumentException($"The views hold {a.Length} and {upper.Length} values; order {n} needs {cells}.", nameof(a));
        }

        if (n == 0)
        {
            return true;
        }

        Accelerator accelerator = gpu.Accelerator;
        int half = Half(n);
        using MemoryBuffer1D<double, Stride1D.Dense> m = accelerator.Allocate1D<double>(cells);
        using MemoryBuffer1D<double, Stride1D.Dense> scratch = accelerator.Allocate1D<double>(Math.Max(1L, (long)half * (n - half)));
        using MemoryBuffer1D<int, Stride1D.Dense> failure = accelerator.Allocate1D<int>(2);
        failure.MemSetToZero();

        var reverse = gpu.GetOrLoadKernel(s_reverse, acc =>
            acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, int, double>(CholeskyKernels.ReverseDamped));
        var diagonal = gpu.GetOrLoadKernel(s_diagonal, acc =>
            acc.LoadStreamKernel<ArrayView<double>, int, int, int, ArrayView<int>>(CholeskyKernels.FactorDiagonal));
        var panel = gpu.GetOrLoadKernel(s_panel, acc => acc.LoadStreamKernel<ArrayView<double>, int, int, int>(CholeskyKernels.SolvePanel));
        var trailing = gpu.GetOrLoadKernel(s_trailing, acc => acc.LoadStreamKernel<ArrayView<double>, int, int, int>(CholeskyKernels.TrailingUpdate));
        var zero = gpu.GetOrLoadKernel(s_zero, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, int>(CholeskyKernels.ZeroStrictUpper));
        var leaves = gpu.GetOrLoadKernel(s_leaves, acc => acc.LoadStreamKernel<ArrayView<double>, int>(CholeskyKernels.InvertLeaves));
        var toUpper = gpu.GetOrLoadKernel(s_upper, acc =>
            acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<float>, int, ArrayView<int>>(CholeskyKernels.ReverseToUpper));

        ArrayView<double> matrix = m.View;
        reverse((int)cells, a, matrix, n, lambda);
        const int Block = CholeskyKernels.Block;
        const int PanelThreads = 128;
        var tileGroup = new Index2D(CholeskyKernels.Threads, CholeskyKernels.Threads);
        for (int k0 = 0; k0 < n; k0 += Block)
        {
            int kb = Math.Min(Block, n - k0);
            diagonal(new KernelConfig(1, Block), matrix, n, k0, kb, failure.View);
            int rest = n - k0 - kb;
            if (rest > 0)
            {
                panel(new KernelConfig((rest + PanelThreads - 1) / PanelThreads, PanelThreads), matrix, n, k0, kb);
                int tiles = (rest + CholeskyKernels.Tile - 1) / CholeskyKernels.Tile;
                trailing(new KernelConfig(new Index2D(tiles, tiles), tileGroup), matrix, n, k0, kb);
            }
        }

        zero((int)cells, matrix, n);
        leaves(new KernelConfig((n + Block - 1) / Block, Block), matrix, n);
        JoinInverse(gpu, matrix, n, 0, n, scratch.View);
        toUpper((int)cells, matrix, upper, n, failure.View);

        var flags = new int[2];
        failure.View.CopyToCPU(flags);
        return flags[0] == 0 && flags[1] == 0;
    }

    /// <summary>The split of an order for the recursive inverse: about half, a multiple of the leaf size.</summary>
    private static int Half(int size) => (size / 2 + CholeskyKernels.Block - 1) / CholeskyKernels.Block * CholeskyKernels.Block;

    /// <summary>The lower block at (first, first) of order <paramref name="size"/>, whose leaves are already inverted.</summary>
    private static void JoinInverse(GpuContext gpu, ArrayView<double> m, int n, int first, int size, ArrayView<double> scratch)
    {
        if (size <= CholeskyKernels.Block)
        {
            return;
        }

        int n1 = Half(size), n2 = size - n1;
        JoinInverse(gpu, m, n, first, n1, scratch);
        JoinInverse(gpu, m, n, first + n1, n2, scratch);
        var multiply = gpu.GetOrLoadKernel(s_multiply, acc =>
            acc.LoadStreamKernel<ArrayView<double>, int, ArrayView<double>, int, ArrayView<double>, int, int, int, int, double, int>(CholeskyKernels.Multiply));
        long l11 = (long)first * n + first, l21 = (long)(first + n1) * n + first, l22 = l21 + n1;
        long end = (long)n * n;
        var group = new Index2D(CholeskyKernels.Threads, CholeskyKernels.Threads);
        // T = L21·L11⁻¹ (n2 × n1), then L21 ← −L22⁻¹·T.
        multiply(new KernelConfig(Grid(n1, n2), group), m.SubView(l21, end - l21), n, m.SubView(l11, end - l11), n, scratch, n1, n2, n1, n1, 1.0, 0);
        multiply(new KernelConfig(Grid(n1, n2), group), m.SubView(l22, end - l22), n, scratch, n1, m.SubView(l21, end - l21), n, n2, n1, n2, -1.0, 0);
    }

    private static Index2D Grid(int columns, int rows) =>
        new((columns + CholeskyKernels.Tile - 1) / CholeskyKernels.Tile, (rows + CholeskyKernels.Tile - 1) / CholeskyKernels.Tile);
}
