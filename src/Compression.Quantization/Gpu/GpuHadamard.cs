// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Gpu.Runtime;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Quantization.Gpu;

/// <summary>
/// The block-wise Walsh–Hadamard transform and <see cref="HadamardRotation"/> on an accelerator (CUDA, OpenCL, or
/// ILGPU's CPU simulator in tests), in place on device memory.
/// </summary>
/// <remarks>
/// <para>Exactness: the result equals <see cref="WalshHadamard.TransformBlocks(DenseTensor, int)"/> and
/// <see cref="HadamardRotation.RotateWeight(DenseTensor)"/> bit for bit for finite inputs. Both sides run the same butterflies in
/// the same order (strides 1, 2, 4, …, then one multiplication by the same float32 scale), and additions,
/// subtractions and that one product are correctly rounded IEEE float32 on every backend; there is no product followed
/// by a sum, so no fused multiply–add can change a rounding. (A backend that flushed subnormals to zero would differ on
/// subnormal inputs; ILGPU's PTX does not flush.) NaN payloads and signs are not specified.</para>
/// <para>Blocks of up to 1024 floats take one kernel (a thread group per 1024-float tile in shared memory); larger
/// blocks take one more kernel per stride from 1024 up, each butterfly in global memory.</para>
/// </remarks>
public static class GpuHadamard
{
    private static readonly object s_shared = new(), s_global = new(), s_signs = new();

    /// <summary>Transforms every consecutive block of <paramref name="blockSize"/> floats of a rows × columns matrix
    /// already on the device, in place. Queues the kernels on the default stream and returns without synchronising.</summary>
    /// <exception cref="ArgumentException"><paramref name="blockSize"/> is not a power of two, does not divide
    /// <paramref name="columns"/>, or <paramref name="data"/> is shorter than rows × columns.</exception>
    public static void TransformBlocks(GpuContext gpu, ArrayView<float> data, int rows, int columns, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        Check(data, rows, columns, blockSize);
        long total = (long)rows * columns;
        if (total == 0)
        {
            return;
        }

        ArrayView<float> matrix = data.SubView(0, total);
        Accelerator accelerator = gpu.Accelerator;
        var shared = gpu.GetOrLoadKernel(s_shared, a => a.LoadStreamKernel<ArrayView<float>, int, float>(HadamardKernels.SharedStages));
        int threads = Math.Max(accelerator.WarpSize, Math.Min(256, accelerator.MaxNumThreadsPerGroup) / accelerator.WarpSize * accelerator.WarpSize);
        int tiles = checked((int)((total + HadamardKernels.Tile - 1) / HadamardKernels.Tile));
        float scale = WalshHadamard.SingleScale(blockSize);
        bool oneKernel = blockSize <= HadamardKernels.Tile;
        // Multiplying by 1 is exact, so a block larger than a tile defers its scale to the last global stage.
        shared(new KernelConfig(tiles, threads), matrix, Math.Min(blockSize, HadamardKernels.Tile), oneKernel ? scale : 1f);
        if (oneKernel)
        {
            return;
        }

        var global = gpu.GetOrLoadKernel(s_global, a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, float>(HadamardKernels.GlobalStage));
        int pairs = checked((int)(total / 2));
        for (int h = HadamardKernels.Tile; h < blockSize; h *= 2)
        {
            global(pairs, matrix, h, 2 * h == blockSize ? scale : 1f);
        }
    }

    /// <summary>Applies <paramref name="rotation"/> to every row of a rows × columns matrix on the device, in place:
    /// rows of a weight become rows of W·Rᵀ, samples x become R·x. Queues the kernels without synchronising.</summary>
    /// <exception cref="ArgumentException">The block size does not divide <paramref name="columns"/>, or the view is too short.</exception>
    public static void Rotate(GpuContext gpu, ArrayView<float> data, int rows, int columns, HadamardRotation rotation)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(rotation);
        Check(data, rows, columns, rotation.BlockSize);
        long total = (long)rows * columns;
        if (total == 0)
        {
            return;
        }

        if (rotation.SignSeed is long seed)
        {
            var signs = gpu.GetOrLoadKernel(s_signs, a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, long>(HadamardKernels.FlipSigns));
            signs(checked((int)total), data.SubView(0, total), columns, seed);
        }

        TransformBlocks(gpu, data, rows, columns, rotation.BlockSize);
    }

    /// <summary>Returns W·Rᵀ computed on the device (uploads, rotates, downloads and waits); equal bit for bit to
    /// <see cref="HadamardRotation.RotateWeight(DenseTensor)"/>.</summary>
    /// <exception cref="ArgumentException">The block size does not divide the column count, or the weight holds NaN or ±∞.</exception>
    public static DenseTensor RotateWeight(GpuContext gpu, DenseTensor weight, HadamardRotation rotation)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(rotation);
        rotation.CheckMatrix(weight, nameof(weight), checkFinite: true);
        DenseTensor result = weight.Clone();
        if (result.Length == 0)
        {
            return result;
        }

        using MemoryBuffer1D<float, Stride1D.Dense> buffer = gpu.Accelerator.Allocate1D<float>(result.Length);
        buffer.View.BaseView.CopyFromCPU(result.Span);
        Rotate(gpu, buffer.View, result.Rows, result.Columns, rotation);
        buffer.View.BaseView.CopyToCPU(result.Span);
        return result;
    }

    private static void Check(ArrayView<float> data, int rows, int columns, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        WalshHadamard.CheckBlockSize(blockSize, nameof(blockSize));
        if (columns % blockSize != 0)
        {
            throw new ArgumentException($"The matrix has {columns} columns; the Hadamard block size {blockSize} must divide it.", nameof(columns));
        }

        if (data.Length < (long)rows * columns)
        {
            throw new ArgumentException($"The device view holds {data.Length} floats; a {rows} × {columns} matrix needs {(long)rows * columns}.", nameof(data));
        }
    }
}
