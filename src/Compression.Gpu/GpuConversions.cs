// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.InteropServices;
using Compression.Gpu.Kernels;
using Compression.Gpu.Runtime;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Gpu;

/// <summary>Element-type conversions on an accelerator; bit-identical to <see cref="NumericConversions"/> on the CPU.</summary>
public static class GpuConversions
{
    private static readonly object s_bfloat16ToSingle = new();

    /// <summary>Widens BF16 values to float32 on the accelerator (host spans in, host span out).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertToSingle(GpuContext gpu, ReadOnlySpan<BFloat16> source, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        if (destination.Length < source.Length)
        {
            throw new ArgumentException($"Destination is too short: {source.Length} elements needed, {destination.Length} given.", nameof(destination));
        }

        if (source.IsEmpty)
        {
            return;
        }

        var kernel = gpu.GetOrLoadKernel(s_bfloat16ToSingle, accelerator =>
            accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(ConversionKernels.BFloat16ToSingle));
        Accelerator accelerator = gpu.Accelerator;
        using MemoryBuffer1D<ushort, Stride1D.Dense> input = accelerator.Allocate1D<ushort>(source.Length);
        using MemoryBuffer1D<float, Stride1D.Dense> output = accelerator.Allocate1D<float>(source.Length);
        input.View.BaseView.CopyFromCPU(MemoryMarshal.Cast<BFloat16, ushort>(source));
        kernel((int)input.Length, input.View, output.View);
        output.View.BaseView.CopyToCPU(destination[..source.Length]);
    }
}
