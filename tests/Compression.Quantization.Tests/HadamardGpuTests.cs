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
