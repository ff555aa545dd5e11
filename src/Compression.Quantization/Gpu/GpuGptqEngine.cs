// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Gpu.Numerics;
using Compression.Gpu.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Quantization.Gpu;

/// <summary>
/// GPTQ's sweep and objective on an accelerator: the weight, U, codes and errors stay on the device for the whole
/// sweep; per block, one kernel quantizes the block (a thread per row) and one tiled GEMM applies the lazy update.
/// Codes, scales and errors come back once at the end. U is factorized on the device in float64
/// (<see cref="GpuCholesky"/>) and stays there; the objective is a float64 tiled product on the device.
/// </summary>
internal sealed class GpuGptqEngine(GpuContext gpu) : GptqEngine
{
    /// <summary>Whether the device sweep covers <paramref name="options"/>: the formats of the fast RTN kernels
    /// (float32 scales, saturating, no clipping search), not ternary or NF4.</summary>
    public static bool Supports(GptqOptions options) =>
        options.Quantization.Format is not (TernaryFormat or Nf4Format) && GpuRoundToNearestQuantizer.IsFast(options.Quantization);

    /// <exception cref="NotSupportedException">The device sweep does not cover the options.</exception>
    public static void ThrowIfUnsupported(GptqOptions options)
    {
        if (!Supports(options))
        {
            throw new NotSupportedException(
                $"GPU GPTQ runs integer, FP, MX and NVFP4 formats with float32 scales, saturating, without the clipping search; " +
                $"{options.Quantization.Format} with these options needs the CPU GptqQuantizer.");
        }
    }

    private static readonly object s_sweep = new(), s_sweepWarp = new(), s_update = new(), s_updateWide = new(), s_quadratic = new();

    public override string Device => gpu.DeviceName;

    /// <summary>Tests and benchmarks: the lazy update through <see cref="GptqDeviceKernels.MultiplySubtractWide"/>
    /// (the default) or the 64×64-tile <see cref="GptqDeviceKernels.MultiplySubtract"/>; both give the same bits.</summary>
    internal bool WideUpdate { get; init; } = true;

    /// <summary>U on the device (<see cref="GpuCholesky"/>): H goes up once, U never comes back.</summary>
    /// <remarks>The device factorisation is one queue of kernels: the token is checked before it only.</remarks>
    public override GptqFactor? TryFactorize(double[] hessian, int n, double lambda, System.Threading.CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Accelerator accelerator = gpu.Accelerator;
        using MemoryBuffer1D<double, Stride1D.Dense> h = accelerator.Allocate1D(hessian);
        MemoryBuffer1D<float, Stride1D.Dense> upper = accelerator.Allocate1D<float>(Math.Max(1L, (long)n * n));
        if (!GpuCholesky.TryUpperFactorOfInverse(gpu, h.View, n, lambda, upper.View.SubView(0, (long)n * n)))
        {
            upper.Dispose();
            return null;
        }

        return new DeviceFactor(upper);
    }

    public override void Sweep(GptqSweepProblem problem, GptqFactor factor, CompressionContext context)
    {
        (GroupedFormat _, RtnOptions rtn, int rows, int columns, int block, int groupSize, int groups, float[] wp,
            int[] groupOfColumn, SegmentParameters[] parameters, float tensorScale, byte[] codes, double[] columnLoss) = problem;
        if (rows == 0 || columns == 0)
        {
            return;
        }

        Accelerator accelerator = gpu.Accelerator;
        GpuFormatSpec spec = GpuRoundToNearestQuantizer.Spec(rtn, new ScaleLayout(rtn.EffectiveGranularity, rows, columns));
        bool staticGroups = groupOfColumn.Length > 0;
        long cells = (long)rows * columns;
        using MemoryBuffer1D<float, Stride1D.Dense> w = accelerator.Allocate1D(wp);
        MemoryBuffer1D<float, Stride1D.Dense> u = ((DeviceFactor)factor).Upper;
        using MemoryBuffer1D<byte, Stride1D.Dense> codesOnDevice = accelerator.Allocate1D<byte>(cells);
        using MemoryBuffer1D<float, Stride1D.Dense> errors = accelerator.Allocate1D<float>(cells);
        using MemoryBuffer1D<float, Stride1D.Dense> scales = accelerator.Allocate1D(Array.ConvertAll(parameters, p => p.Scale));
        using MemoryBuffer1D<byte, Stride1D.Dense> zeros = accelerator.Allocate1D(Array.ConvertAll(parameters, p => p.Zero));
        using MemoryBuffer1D<int, Stride1D.Dense> groupMap = accelerator.Allocate1D(staticGroups ? groupOfColumn : [0]);

        var sweep = gpu.GetOrLoadKernel(s_sweep, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>,
                ArrayView<byte>, ArrayView<int>, GptqSweepSpec, GpuFormatSpec>(GptqDeviceKernels.SweepBlock));
        var sweepWarp = gpu.GetOrLoadKernel(s_sweepWarp, a =>
            a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>,
                ArrayView<byte>, ArrayView<int>, GptqSweepSpec, GpuFormatSpec>(GptqDeviceKernels.SweepBlockWarp));
        bool warpPerRow = block <= GptqDeviceKernels.MaxWarpSlots * 32 && accelerator.WarpSize == 32;
        var warpConfig = new KernelConfig((rows + GptqDeviceKernels.WarpsPerGroup - 1) / GptqDeviceKernels.WarpsPerGroup,
            GptqDeviceKernels.WarpsPerGroup * 32);
        var update = WideUpdate
            ? gpu.GetOrLoadKernel(s_updateWide, a =>
                a.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>, int, ArrayView<float>, int, int, int, int>(GptqDeviceKernels.MultiplySubtractWide))
            : gpu.GetOrLoadKernel(s_update, a =>
                a.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>, int, ArrayView<float>, int, int, int, int>(GptqDeviceKernels.MultiplySubtract));
        int updateTile = WideUpdate ? GptqDeviceKernels.WideTile : GptqDeviceKernels.Tile;

        int blocks = problem.BlockCount;
        for (int b = 0; b < blocks; b++)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            int first = b * block, end = Math.Min(first + block, columns);
            var blockSpec = new GptqSweepSpec
            {
                Rows = rows, Columns = columns, First = first, End = end, GroupSize = groupSize, Groups = groups,
                StaticGroups = staticGroups ? 1 : 0, TensorScale = tensorScale,
            };
            if (warpPerRow)
            {
                sweepWarp(warpConfig, w.View, u.View, codesOnDevice.View, errors.View, scales.View, zeros.View, groupMap.View, blockSpec, spec);
            }
            else
            {
                sweep(rows, w.View, u.View, codesOnDevice.View, errors.View, scales.View, zeros.View, groupMap.View, blockSpec, spec);
            }

            if (end < columns)
            {
                int rest = columns - end;
                var grid = new Index2D((rest + updateTile - 1) / updateTile, (rows + updateTile - 1) / updateTile);
                update(new KernelConfig(grid, new Index2D(GptqDeviceKernels.Threads, GptqDeviceKernels.Threads)),
                    errors.View.SubView(first, cells - first), columns,
                    u.View.SubView((long)first * columns + end, (long)columns * columns - ((long)first * columns + end)), columns,
                    w.View.SubView(end, cells - end), columns, rows, rest, end - first);
            }

            // Synchronised per block, so progress means work done and cancellation takes effect within a block.
            accelerator.Synchronize();
            context.Progress?.Report(new CompressionProgress("gptq", context.LayerName, b + 1, blocks));
        }

        codesOnDevice.View.CopyToCPU(codes);
        w.View.CopyToCPU(wp);
        var scalesHost = new float[parameters.Length];
        var zerosHost = new byte[parameters.Length];
        scales.View.CopyToCPU(scalesHost);
        zeros.View.CopyToCPU(zerosHost);
        for (int i = 0; i < parameters.Length; i++)
        {
            parameters[i] = parameters[i] with { Scale = scalesHost[i], Zero = zerosHost[i], TensorScale = tensorScale };
        }

        var errorsHost = new float[cells];
        errors.View.CopyToCPU(errorsHost);
        // Σ_rows e² per column, float64, rows in order; columns in parallel chunks of 64.
        System.Threading.Tasks.Parallel.For(0, (columns + 63) / 64, chunk =>
        {
            int k0 = chunk * 64, k1 = Math.Min(columns, k0 + 64);
            Span<double> sums = stackalloc double[64];
            sums.Clear();
            for (int r = 0; r < rows; r++)
            {
                ReadOnlySpan<float> row = errorsHost.AsSpan(r * columns + k0, k1 - k0);
                for (int k = 0; k < row.Length; k++)
                {
                    sums[k] += (double)row[k] * row[k];
                }
            }

            for (int k = k0; k < k1; k++)
            {
                columnLoss[k] = sums[k - k0] / 2;
            }
        });
    }

    public override double SumOfQuadraticForms(double[] delta, int rows, int columns, double[] hessian, System.Threading.CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Accelerator accelerator = gpu.Accelerator;
        int tilesX = (columns + GptqDeviceKernels.Tile - 1) / GptqDeviceKernels.Tile, tilesY = (rows + GptqDeviceKernels.Tile - 1) / GptqDeviceKernels.Tile;
        using MemoryBuffer1D<double, Stride1D.Dense> d = accelerator.Allocate1D(delta);
        using MemoryBuffer1D<double, Stride1D.Dense> h = accelerator.Allocate1D(hessian);
        using MemoryBuffer1D<double, Stride1D.Dense> partials = accelerator.Allocate1D<double>((long)tilesX * tilesY);
        var kernel = gpu.GetOrLoadKernel(s_quadratic, a =>
            a.LoadStreamKernel<ArrayView<double>, ArrayView<double>, ArrayView<double>, int, int>(GptqDeviceKernels.QuadraticForms));
        kernel(new KernelConfig(new Index2D(tilesX, tilesY), new Index2D(GptqDeviceKernels.Threads, GptqDeviceKernels.Threads)),
            d.View, h.View, partials.View, rows, columns);
        var host = new double[tilesX * tilesY];
        partials.View.CopyToCPU(host);
        double total = 0;
        foreach (double partial in host)
        {
            total += partial;
        }

        return total;
    }

    /// <summary>U in device memory, float32, row-major.</summary>
    private sealed class DeviceFactor(MemoryBuffer1D<float, Stride1D.Dense> upper) : GptqFactor
    {
        public MemoryBuffer1D<float, Stride1D.Dense> Upper { get; } = upper;

        public override void Dispose() => Upper.Dispose();
    }
}
