// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Gpu.Kernels;
using Compression.Gpu.Runtime;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Gpu.Calibration;

/// <summary>
/// <see cref="Compression.Calibration.HessianAccumulator"/> on an accelerator: the running mean <c>M = XᵀX/n</c> of a layer's
/// inputs stays on the device (float32, as the reference GPTQ keeps it on the GPU), batches stream in from the host or
/// straight from device memory, and <see cref="GetHessian"/> returns <c>H = 2M</c>.
/// </summary>
/// <remarks>
/// Each batch B of b rows updates <c>M ← M·n/(n+b) + BᵀB/(n+b)</c> in one call: cuBLAS's SSYRK (float32, no TF32) when
/// the CUDA device has a loadable cuBLAS (see <c>CuBlasRoute</c>), else our own kernel (tiles of 128×128, upper
/// triangle only, operands read from shared memory 16 bytes at a time). Float32 sums of a batch differ from the CPU
/// accumulator's float64 ones in the last bits; the tests hold them within 1e-5 relative. Either route repeats bit for
/// bit on one device. Not thread-safe.
/// </remarks>
public sealed class GpuHessianAccumulator : IDisposable
{
    private static readonly object s_syrk = new(), s_syrkWide = new(), s_syrkPipelined = new(), s_syrkQuads = new(), s_reduce = new();

    /// <summary>Tests and benchmarks: force a kernel; null is <see cref="SyrkKernel.CuBlasSyrk"/> where cuBLAS loads,
    /// else <see cref="SyrkKernel.Pipelined128Quads"/>. A cuBLAS kernel forced where cuBLAS does not load runs
    /// <see cref="SyrkKernel.Pipelined128Quads"/>.</summary>
    internal SyrkKernel? Kernel { get; set; }

    /// <summary>Tests and benchmarks: split K of the pipelined kernel into this many parts; null chooses.</summary>
    internal int? Splits { get; set; }

    // Split-K partial sums (splits × Columns², reused across batches).
    private MemoryBuffer1D<float, Stride1D.Dense>? _partials;

    private readonly GpuContext _gpu;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _mean;
    private MemoryBuffer1D<float, Stride1D.Dense>? _batch;

    /// <summary>Creates an empty accumulator for inputs of <paramref name="columns"/> features on <paramref name="gpu"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="columns"/> is not positive.</exception>
    public GpuHessianAccumulator(GpuContext gpu, int columns)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        _gpu = gpu;
        Columns = columns;
        _mean = gpu.Accelerator.Allocate1D<float>((long)columns * columns);
        _mean.MemSetToZero();
    }

    /// <summary>Input features (the Hessian is Columns × Columns).</summary>
    public int Columns { get; }

    /// <summary>The kernel the next batch runs (after the fallback from cuBLAS).</summary>
    internal SyrkKernel EffectiveKernel
    {
        get
        {
            bool cuBlas = Kernel is null or SyrkKernel.CuBlasGemm or SyrkKernel.CuBlasSyrk && _gpu.CuBlas.Handle is not null;
            return Kernel switch
            {
                // SSYRK measured fastest on an H200 (4096 features × 2048 rows: 0.82 ms, SGEMM 1.36 ms, ours 1.18 ms).
                null => cuBlas ? SyrkKernel.CuBlasSyrk : SyrkKernel.Pipelined128Quads,
                SyrkKernel.CuBlasGemm or SyrkKernel.CuBlasSyrk => cuBlas ? Kernel.Value : SyrkKernel.Pipelined128Quads,
                _ => Kernel.Value,
            };
        }
    }

    /// <summary>Rows (samples) accumulated so far.</summary>
    public long SampleCount { get; private set; }

    /// <summary>Adds a host batch [rows, Columns] (or any tensor whose last dimension is Columns).</summary>
    /// <exception cref="ArgumentException">The last dimension is not <see cref="Columns"/>, or a value is not finite.</exception>
    public void Add(DenseTensor activations)
    {
        ArgumentNullException.ThrowIfNull(activations);
        if (activations.Length == 0)
        {
            return;
        }

        if (activations.Shape[^1] != Columns)
        {
            throw new ArgumentException($"Activations have {activations.Shape[^1]} features; this accumulator has {Columns}.", nameof(activations));
        }

        int rows = checked((int)(activations.Length / Columns));

        foreach (float v in activations.Span)
        {
            if (!float.IsFinite(v))
            {
                throw new ArgumentException($"Activations hold {v}; they must be finite.", nameof(activations));
            }
        }

        if (_batch is null || _batch.Length < activations.Length)
        {
            _batch?.Dispose();
            _batch = _gpu.Accelerator.Allocate1D<float>(activations.Length);
        }

        _batch.View.SubView(0, activations.Length).BaseView.CopyFromCPU(activations.Span);
        Add(_batch.View.SubView(0, activations.Length), rows);
    }

    /// <summary>Adds a device batch of <paramref name="rows"/> × <see cref="Columns"/> finite values (no copy, no check).</summary>
    public void Add(ArrayView<float> activations, int rows)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        if (activations.Length < (long)rows * Columns)
        {
            throw new ArgumentException($"The view holds {activations.Length} values; {rows} × {Columns} needed.", nameof(activations));
        }

        if (rows == 0)
        {
            return;
        }

        long total = SampleCount + rows;
        // Wide layers get 128×128 tiles (twice the reuse per staged value); narrower ones keep 64×64 tiles, so that
        // enough tiles remain to fill the device.
        SyrkKernel kernel = EffectiveKernel;
        float alpha = (float)((double)SampleCount / total), beta = (float)(1.0 / total);
        if (kernel is SyrkKernel.CuBlasGemm or SyrkKernel.CuBlasSyrk)
        {
            AddCuBlas(activations, rows, alpha, beta, kernel == SyrkKernel.CuBlasSyrk);
        }
        else if (kernel is SyrkKernel.Pipelined128 or SyrkKernel.Pipelined128Quads)
        {
            AddPipelined(activations, rows, alpha, beta, kernel == SyrkKernel.Pipelined128Quads);
        }
        else
        {
            var syrk = kernel == SyrkKernel.Tile64
                ? _gpu.GetOrLoadKernel(s_syrk, a =>
                    a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, float, float>(HessianKernels.SyrkUpdate))
                : _gpu.GetOrLoadKernel(s_syrkWide, a =>
                    a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, float, float>(HessianKernels.SyrkUpdateWide));
            int tile = kernel == SyrkKernel.Tile64 ? HessianKernels.Tile : HessianKernels.WideTile;
            int tiles = (Columns + tile - 1) / tile;
            syrk(new KernelConfig(new Index2D(tiles, tiles), new Index2D(HessianKernels.Threads, HessianKernels.Threads)),
                activations, _mean.View, rows, Columns, alpha, beta);
        }

        SampleCount = total;
    }

    /// <summary>
    /// cuBLAS is column-major: the row-major batch X (rows × Columns) is, to it, Y = Xᵀ (Columns × rows, leading
    /// dimension Columns), and XᵀX = Y·Yᵀ. SGEMM (N, T) writes the whole symmetric matrix; SSYRK writes its column-major
    /// lower triangle, which is the row-major upper triangle <see cref="GetHessian"/> reads. cuBLAS's α scales the
    /// product and its β the old M: our β and α. β = 0 on the first batch, so M's initial contents are not read.
    /// </summary>
    private void AddCuBlas(ArrayView<float> activations, int rows, float alpha, float beta, bool syrk)
    {
        ILGPU.Runtime.Cuda.CuBlas blas = _gpu.CuBlas.Handle!;
        ArrayView<float> x = activations.SubView(0, (long)rows * Columns);
        if (syrk)
        {
            blas.Syrk(ILGPU.Runtime.Cuda.CuBlasFillMode.Lower, ILGPU.Runtime.Cuda.CuBlasOperation.NonTranspose, Columns, rows,
                beta, x, Columns, alpha, _mean.View.BaseView, Columns);
        }
        else
        {
            blas.Gemm(ILGPU.Runtime.Cuda.CuBlasOperation.NonTranspose, ILGPU.Runtime.Cuda.CuBlasOperation.Transpose, Columns, Columns, rows,
                beta, x, Columns, x, Columns, alpha, _mean.View.BaseView, Columns);
        }
    }

    private void AddPipelined(ArrayView<float> activations, int rows, float alpha, float beta, bool quads)
    {
        int tiles = (Columns + HessianKernels.WideTile - 1) / HessianKernels.WideTile;
        int upperTiles = tiles * (tiles + 1) / 2;
        // Narrow layers leave most of the device idle with one group per tile: split the rows so that about two groups
        // per multiprocessor run, each over at least 64 rows, while the partial slices stay small (≤ 64 Mi values).
        long square = (long)Columns * Columns;
        int splits = Splits ?? Math.Clamp(
            Math.Min((2 * _gpu.Accelerator.NumMultiprocessors + upperTiles - 1) / upperTiles, rows / 64),
            1, (int)Math.Clamp((64L << 20) / square, 1, 64));
        if (square > int.MaxValue)
        {
            splits = 1;             // ReduceSplits indexes the square with 32 bits
        }

        int rowsPerSplit = (rows + splits - 1) / splits;
        splits = (rows + rowsPerSplit - 1) / rowsPerSplit;          // no empty split
        if (splits > 1 && (_partials is null || _partials.Length < splits * square))
        {
            _partials?.Dispose();
            _partials = _gpu.Accelerator.Allocate1D<float>(splits * square);
        }

        var syrk = quads
            ? _gpu.GetOrLoadKernel(s_syrkQuads, a =>
                a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, float>(HessianKernels.SyrkUpdatePipelinedQuads))
            : _gpu.GetOrLoadKernel(s_syrkPipelined, a =>
                a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, float>(HessianKernels.SyrkUpdatePipelined));
        ArrayView<float> partials = splits > 1 ? _partials!.View : _mean.View;      // unused without a split
        syrk(new KernelConfig(new Index3D(tiles, tiles, splits), new Index3D(HessianKernels.Threads, HessianKernels.Threads, 1)),
            activations, _mean.View, partials, rows, Columns, rowsPerSplit, alpha, beta);
        if (splits > 1)
        {
            var reduce = _gpu.GetOrLoadKernel(s_reduce, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, float, float>(HessianKernels.ReduceSplits));
            reduce((int)square, _mean.View, _partials!.View, Columns, splits, alpha, beta);
        }
    }

    /// <summary>H = 2·XᵀX/n, Columns × Columns row-major, symmetric (all zeros before the first batch).</summary>
    public double[] GetHessian()
    {
        float[] mean = GC.AllocateUninitializedArray<float>(Columns * Columns);
        _mean.View.BaseView.CopyToCPU(mean);
        double[] h = GC.AllocateUninitializedArray<double>(mean.Length);
        int n = Columns;
        // Row i reads the computed upper triangle: (i, j) for j ≥ i, and its mirror (j, i) for j < i.
        System.Threading.Tasks.Parallel.For(0, n, i =>
        {
            long row = (long)i * n;
            for (int j = 0; j < i; j++)
            {
                h[row + j] = 2.0 * mean[(long)j * n + i];
            }

            for (int j = i; j < n; j++)
            {
                h[row + j] = 2.0 * mean[row + j];
            }
        });

        return h;
    }

    /// <summary>Forgets every batch.</summary>
    public void Reset()
    {
        _mean.MemSetToZero();
        SampleCount = 0;
    }

    /// <summary>Releases the device memory.</summary>
    public void Dispose()
    {
        _mean.Dispose();
        _batch?.Dispose();
        _partials?.Dispose();
    }
}

/// <summary>The SYRK kernels of <see cref="GpuHessianAccumulator"/> (selectable for tests and benchmarks).</summary>
internal enum SyrkKernel
{
    /// <summary>64×64 tiles, 4×4 values per thread.</summary>
    Tile64,

    /// <summary>128×128 tiles, 8×8 values per thread, one shared buffer.</summary>
    Tile128,

    /// <summary>128×128 tiles with the next step fetched into registers during the products (two shared buffers).</summary>
    Pipelined128,

    /// <summary><see cref="Pipelined128"/> reading its operands from shared memory 16 bytes at a time (same sums, same bits).</summary>
    Pipelined128Quads,

    /// <summary>cuBLAS SGEMM of the whole matrix (twice the SYRK's products, at cuBLAS's GEMM rate).</summary>
    CuBlasGemm,

    /// <summary>cuBLAS SSYRK of the upper triangle.</summary>
    CuBlasSyrk,
}
