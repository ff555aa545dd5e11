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
/// the same order (the signs' exact multiplications by ±1, strides 1, 2, 4, …, then one multiplication by the same
/// float32 scale), and additions, subtractions and that one product are correctly rounded IEEE float32 on every
/// backend; no rounded product is followed by a sum, so no fused multiply–add can change a rounding. (A backend that
/// flushed subnormals to zero would differ on subnormal inputs; ILGPU's PTX does not flush.) NaN payloads and signs
/// are not specified.</para>
/// <para>On CUDA, blocks of up to 4 × the warp size (128 floats), with a column count divisible by 4, are transformed
/// in registers in one pass: each thread loads four consecutive floats with one 16-byte load, runs strides 1 and 2
/// itself and the larger strides with warp shuffles, and stores with one 16-byte store; the signs and the scale ride
/// along. Other blocks of up to 1024 floats take one kernel (a thread group per 1024-float tile in shared memory, the
/// signs applied as the tile is loaded); larger blocks take that kernel for strides up to 512 and then one pass over
/// memory per two further strides.</para>
/// </remarks>
public static class GpuHadamard
{
    private static readonly object s_register = new(), s_shared = new(), s_global = new(), s_globalPair = new();

    /// <summary>Which kernels run blocks that the register kernel can take (tests and the benchmark compare them).</summary>
    internal enum Path
    {
        /// <summary>The register kernel where it applies, else the shared-memory one.</summary>
        Fastest,

        /// <summary>Always the shared-memory tiles (the kernel before the register one).</summary>
        SharedMemory,
    }

    /// <summary>Transforms every consecutive block of <paramref name="blockSize"/> floats of a rows × columns matrix
    /// already on the device, in place. Queues the kernels on the default stream and returns without synchronising.</summary>
    /// <exception cref="ArgumentException"><paramref name="blockSize"/> is not a power of two, does not divide
    /// <paramref name="columns"/>, or <paramref name="data"/> is shorter than rows × columns.</exception>
    public static void TransformBlocks(GpuContext gpu, ArrayView<float> data, int rows, int columns, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        Check(data, rows, columns, blockSize);
        Run(gpu, data, rows, columns, blockSize, null, Path.Fastest);
    }

    /// <summary>Applies <paramref name="rotation"/> to every row of a rows × columns matrix on the device, in place:
    /// rows of a weight become rows of W·Rᵀ, samples x become R·x. Queues the kernels without synchronising.</summary>
    /// <exception cref="ArgumentException">The block size does not divide <paramref name="columns"/>, or the view is too short.</exception>
    public static void Rotate(GpuContext gpu, ArrayView<float> data, int rows, int columns, HadamardRotation rotation) =>
        Rotate(gpu, data, rows, columns, rotation, Path.Fastest);

    /// <summary><see cref="Rotate(GpuContext, ArrayView{float}, int, int, HadamardRotation)"/> through the chosen kernels.</summary>
    internal static void Rotate(GpuContext gpu, ArrayView<float> data, int rows, int columns, HadamardRotation rotation, Path path)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(rotation);
        Check(data, rows, columns, rotation.BlockSize);
        Run(gpu, data, rows, columns, rotation.BlockSize, rotation.SignSeed, path);
    }

    /// <summary>Whether <see cref="Path.Fastest"/> runs the register kernel for this shape on this accelerator (CUDA
    /// and the simulator: OpenCL devices need not have subgroup shuffles, so they keep the shared-memory kernel).</summary>
    internal static bool UsesRegisters(GpuContext gpu, ArrayView<float> data, int columns, int blockSize) =>
        gpu.Kind != GpuDeviceKind.OpenCL && blockSize >= 2 && blockSize <= 4 * gpu.Accelerator.WarpSize && columns % 4 == 0 && ((IContiguousArrayView)data).Index % 4 == 0;

    private static void Run(GpuContext gpu, ArrayView<float> data, int rows, int columns, int blockSize, long? seed, Path path)
    {
        long total = (long)rows * columns;
        if (total == 0)
        {
            return;
        }

        ArrayView<float> matrix = data.SubView(0, total);
        Accelerator accelerator = gpu.Accelerator;
        int threads = Math.Max(accelerator.WarpSize, Math.Min(256, accelerator.MaxNumThreadsPerGroup) / accelerator.WarpSize * accelerator.WarpSize);
        float scale = WalshHadamard.SingleScale(blockSize);
        if (path == Path.Fastest && UsesRegisters(gpu, matrix, columns, blockSize))
        {
            var register = gpu.GetOrLoadKernel(s_register, a =>
                a.LoadStreamKernel<ArrayView<Float4>, int, int, int, int, int, float, long, int>(HadamardKernels.RegisterBlocks));
            int warp = accelerator.WarpSize;
            int quadsPerRow = columns / 4;
            int chunksPerRow = (quadsPerRow + warp - 1) / warp;
            long warps = (long)chunksPerRow * ((rows + HadamardKernels.RegisterRows - 1) / HadamardKernels.RegisterRows);
            int warpsPerGroup = threads / warp;
            int groups = checked((int)((warps + warpsPerGroup - 1) / warpsPerGroup));
            _ = checked(groups * warpsPerGroup);        // the kernel numbers warps with 32 bits
            register(new KernelConfig(groups, threads), matrix.Cast<Float4>(), rows, quadsPerRow, chunksPerRow, Math.Max(1, blockSize / 4),
                blockSize == 2 ? 1 : 0, scale, seed ?? 0, seed is null ? 0 : 1);
            return;
        }

        var shared = gpu.GetOrLoadKernel(s_shared, a => a.LoadStreamKernel<ArrayView<float>, int, float, int, long, int>(HadamardKernels.SharedStages));
        int tiles = checked((int)((total + HadamardKernels.Tile - 1) / HadamardKernels.Tile));
        bool oneKernel = blockSize <= HadamardKernels.Tile;
        // Multiplying by 1 is exact, so a block larger than a tile defers its scale to the last global stage.
        shared(new KernelConfig(tiles, threads), matrix, Math.Min(blockSize, HadamardKernels.Tile), oneKernel ? scale : 1f, columns, seed ?? 0, seed is null ? 0 : 1);
        if (oneKernel)
        {
            return;
        }

        var global = gpu.GetOrLoadKernel(s_global, a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, float>(HadamardKernels.GlobalStage));
        var globalPair = gpu.GetOrLoadKernel(s_globalPair, a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, float>(HadamardKernels.GlobalStagePair));
        for (int h = HadamardKernels.Tile; h < blockSize;)
        {
            if (4 * h <= blockSize)
            {
                globalPair(checked((int)(total / 4)), matrix, h, 4 * h == blockSize ? scale : 1f);
                h *= 4;
            }
            else
            {
                global(checked((int)(total / 2)), matrix, h, 2 * h == blockSize ? scale : 1f);
                h *= 2;
            }
        }
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
