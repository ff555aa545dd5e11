using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using Compression.Testing;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Quantization.Tests;

/// <summary>The Hadamard kernels on ILGPU's CPU simulator against the CPU transform: equal bit for bit, because both
/// run the same butterflies in the same order with correctly rounded float32 additions and one product.</summary>
[Collection("Gpu")]
public sealed class HadamardGpuTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public void Dispose() => _gpu.Dispose();

    [Theory]
    [InlineData(2, 3, 8)]
    [InlineData(4, 5, 4)]
    [InlineData(8, 3, 24)]
    [InlineData(16, 7, 48)]      // 336 floats: one partial tile
    [InlineData(32, 9, 160)]     // 1440 floats: a full tile and a partial one
    [InlineData(64, 4, 256)]
    [InlineData(128, 3, 384)]
    [InlineData(256, 5, 512)]
    [InlineData(1024, 3, 2048)]  // exactly the shared-memory tile
    [InlineData(2048, 2, 4096)]  // one global stage after the tiles
    [InlineData(4096, 2, 4096)]  // two global stages
    public void TransformBlocks_EqualsTheCpu_BitForBit(int blockSize, int rows, int columns)
    {
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: blockSize + rows);
        DenseTensor cpu = w.Clone();
        WalshHadamard.TransformBlocks(cpu, blockSize);

        using MemoryBuffer1D<float, Stride1D.Dense> buffer = _gpu.Accelerator.Allocate1D<float>(w.Length);
        buffer.View.BaseView.CopyFromCPU(w.Span);
        GpuHadamard.TransformBlocks(_gpu, buffer.View.BaseView, rows, columns, blockSize);
        var gpu = new float[w.Length];
        buffer.View.BaseView.CopyToCPU(gpu);
        Assert.Equal(cpu.Span.ToArray().Select(BitConverter.SingleToInt32Bits), gpu.Select(BitConverter.SingleToInt32Bits));
    }

    [Theory]
    [InlineData(16, null)]
    [InlineData(32, 123L)]
    [InlineData(2048, -5L)]
    public void RotateWeight_EqualsTheCpuRotation_BitForBit(int blockSize, long? seed)
    {
        var rotation = new HadamardRotation(blockSize, seed);
        DenseTensor w = RandomData.GaussianMatrix(3, 4096, seed: 17);
        Assert.True(rotation.RotateWeight(w).BitwiseEquals(GpuHadamard.RotateWeight(_gpu, w, rotation)));
    }

    /// <summary>The register kernel and the shared-memory kernel, each against the CPU rotation, signed and not:
    /// rows not a multiple of the four a warp takes, rows of fewer quads than a warp (idle lanes) and of several
    /// warps' widths, and a poisoned tail after the matrix that neither kernel may touch.</summary>
    [Theory]
    [InlineData(2, 5, 12)]
    [InlineData(4, 3, 20)]
    [InlineData(8, 7, 40)]
    [InlineData(16, 5, 48)]      // 12 quads a row: 20 idle lanes
    [InlineData(16, 9, 640)]     // 160 quads a row: five warps' widths
    [InlineData(32, 7, 96)]
    [InlineData(32, 6, 544)]
    [InlineData(64, 5, 192)]
    [InlineData(64, 3, 576)]
    [InlineData(128, 7, 128)]    // one block a row: each warp is one block
    [InlineData(128, 5, 640)]
    public void RegisterAndSharedKernels_EqualTheCpu_BitForBit(int blockSize, int rows, int columns)
    {
        foreach (long? seed in new long?[] { null, 1000L * blockSize + rows })
        foreach (GpuHadamard.Path path in new[] { GpuHadamard.Path.Fastest, GpuHadamard.Path.SharedMemory })
        {
            var rotation = new HadamardRotation(blockSize, seed);
            DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: HashCode.Combine(blockSize, rows, columns, seed, path));
            float[] cpu = rotation.RotateWeight(w).Span.ToArray();

            const int tail = 64;
            using MemoryBuffer1D<float, Stride1D.Dense> buffer = _gpu.Accelerator.Allocate1D<float>(w.Length + tail);
            buffer.View.BaseView.CopyFromCPU(w.Span.ToArray().Concat(Enumerable.Repeat(float.NaN, tail)).ToArray());
            Assert.True(GpuHadamard.UsesRegisters(_gpu, buffer.View.BaseView, columns, blockSize));
            GpuHadamard.Rotate(_gpu, buffer.View.BaseView, rows, columns, rotation, path);
            var gpu = new float[w.Length + tail];
            buffer.View.BaseView.CopyToCPU(gpu);
            Assert.Equal(cpu.Select(BitConverter.SingleToInt32Bits), gpu.Take(w.Length).Select(BitConverter.SingleToInt32Bits));
            Assert.All(gpu.Skip(w.Length), v => Assert.True(float.IsNaN(v)));
        }
    }

    /// <summary>Blocks above a shared-memory tile with signs: the signs fused into the tile's load, then the passes
    /// of two strides (4096: one; 8192: one and a single stride) and of one (2048).</summary>
    [Theory]
    [InlineData(2048, 3, 4096)]
    [InlineData(4096, 2, 8192)]
    [InlineData(8192, 1, 8192)]
    public void LargeSignedBlocks_EqualTheCpuRotation_BitForBit(int blockSize, int rows, int columns)
    {
        var rotation = new HadamardRotation(blockSize, signSeed: blockSize + 1);
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: blockSize * 3 + rows);
        Assert.True(rotation.RotateWeight(w).BitwiseEquals(GpuHadamard.RotateWeight(_gpu, w, rotation)));
    }

    /// <summary>A view that starts off a 16-byte boundary cannot take 16-byte loads: the shared-memory kernel runs
    /// and the result is still the CPU's.</summary>
    [Fact]
    public void UnalignedView_FallsBackToSharedMemory_BitForBit()
    {
        const int rows = 3, columns = 64;
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: 91);
        DenseTensor cpu = w.Clone();
        WalshHadamard.TransformBlocks(cpu, 32);
        using MemoryBuffer1D<float, Stride1D.Dense> buffer = _gpu.Accelerator.Allocate1D<float>(w.Length + 1);
        ArrayView<float> view = buffer.View.BaseView.SubView(1, w.Length);
        view.CopyFromCPU(w.Span);
        Assert.False(GpuHadamard.UsesRegisters(_gpu, view, columns, 32));
        GpuHadamard.TransformBlocks(_gpu, view, rows, columns, 32);
        var gpu = new float[w.Length];
        view.CopyToCPU(gpu);
        Assert.Equal(cpu.Span.ToArray().Select(BitConverter.SingleToInt32Bits), gpu.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void BadArguments_AreRejectedBeforeAnyKernelRuns()
    {
        using MemoryBuffer1D<float, Stride1D.Dense> buffer = _gpu.Accelerator.Allocate1D<float>(64);
        Assert.Throws<ArgumentException>(() => GpuHadamard.TransformBlocks(_gpu, buffer.View.BaseView, 2, 48, 32));
        Assert.Throws<ArgumentException>(() => GpuHadamard.TransformBlocks(_gpu, buffer.View.BaseView, 2, 48, 12));
        Assert.Throws<ArgumentException>(() => GpuHadamard.TransformBlocks(_gpu, buffer.View.BaseView, 4, 32, 16));
        DenseTensor w = RandomData.GaussianMatrix(1, 32, seed: 1);
        w[0, 3] = float.NaN;
        Assert.Throws<ArgumentException>(() => GpuHadamard.RotateWeight(_gpu, w, new HadamardRotation(16)));
    }
}
