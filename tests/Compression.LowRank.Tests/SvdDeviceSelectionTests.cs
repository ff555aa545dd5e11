using Compression.Gpu.Runtime;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.LowRank.Tests;

/// <summary><see cref="RandomizedSvdOptions.Device"/> routing, with ILGPU's CPU simulator as the selected GPU.</summary>
[Collection("Gpu")]
public sealed class SvdDeviceSelectionTests : IDisposable
{
    private readonly GpuContext _simulator = GpuContext.CreateCpuSimulator();

    public void Dispose() => _simulator.Dispose();

    [Fact]
    public void ForcedGpu_RunsOnTheSelectedContext_AndAgreesWithTheCpuToFloat32Rounding()
    {
        DenseTensor a = RandomData.GaussianMatrix(96, 80, seed: 4);
        var options = new RandomizedSvdOptions { Seed = 9, PowerIterations = 2 };
        SingularValueDecomposition cpu = SingularValueDecomposition.Randomized(a, 12, options with { Device = ComputeDevice.Cpu });
        SingularValueDecomposition gpu;
        using (GpuSelection.UseContext(_simulator))
        {
            gpu = SingularValueDecomposition.Randomized(a, 12, options with { Device = ComputeDevice.Gpu });
        }

        Assert.True(_simulator.LoadedKernelCount > 0, "the forced GPU route did not run a kernel on the selected context");
        for (int i = 0; i < 12; i++)
        {
            Assert.Equal(cpu.SingularValues[i], gpu.SingularValues[i], cpu.SingularValues[0] * 1e-5);
        }
    }

    [Fact]
    public void Auto_KeepsSmallMatricesOnTheCpu_AndChecksTheRankFirst()
    {
        DenseTensor a = RandomData.GaussianMatrix(40, 30, seed: 5);
        using (GpuSelection.UseContext(_simulator))
        {
            SingularValueDecomposition.Randomized(a, 5, RandomizedSvdOptions.Default);
            Assert.Equal(0, _simulator.LoadedKernelCount);
            Assert.ThrowsAny<ArgumentException>(() => SingularValueDecomposition.Randomized(a, 31, new RandomizedSvdOptions { Device = ComputeDevice.Gpu }));
        }
    }
}
