// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Runtime.InteropServices;
using Compression.Gpu.Runtime;
using Compression.Quantization;
using Compression.Quantization.Gpu;
using Compression.Quantization.Rotation;
using Compression.Reliability.Worker;
using Compression.Tensors;

namespace Compression.Reliability.Tests;

/// <summary>
/// The GPU kernels on ILGPU's CPU simulator give the same bits twice: RTN (warp-shuffle reductions; integer
/// asymmetric and NVFP4) and the Hadamard rotation. Small sizes: the simulator runs every GPU thread as a CPU thread
/// (the device Hessian and GPTQ sweep took minutes here and are left to Compression.Gpu.Tests and the Quantization
/// GPU tests, which compare them with the CPU path). None of the kernels uses atomics; the only launch-dependent split
/// (the Hessian's row splits, chosen from the device's multiprocessor count) is documented in
/// docs/reliability.md (determinism section).
/// </summary>
public sealed class GpuDeterminismTests : IDisposable
{
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public void Dispose() => _gpu.Dispose();

    [Fact]
    public void GpuKernels_OnTheCpuSimulator_GiveIdenticalBitsTwice()
    {
        // Eight rows: the simulator runs each GPU thread as a CPU thread, so even small launches take seconds.
        DenseTensor weight = DeterminismDigest.Data.Weight.SliceRows(0, 8).Clone();
        byte[] Run()
        {
            var bytes = new List<byte>();
            foreach (RtnOptions options in new[] { RtnOptions.W4Group128 with { Symmetric = false }, RtnOptions.Nvfp4 })
            {
                bytes.AddRange(DeterminismDigest.Serialize(new GpuRoundToNearestQuantizer(_gpu, options).Quantize(weight)));
            }

            bytes.AddRange(Bits(GpuHadamard.RotateWeight(_gpu, weight, new HadamardRotation(128, signSeed: 4)).Span.ToArray()));
            return [.. bytes];
        }

        byte[] first = Run();
        byte[] second = Run();
        Assert.Equal(first, second);
    }

    private static byte[] Bits<T>(T[] values)
        where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}
