// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using ILGPU;
using ILGPU.Runtime;

namespace Compression.Gpu.Kernels;

/// <summary>Device code for element-type conversions. No allocation, no exceptions: the host validated every length.</summary>
internal static class ConversionKernels
{
    /// <summary><c>destination[i] = float32 whose upper half is source[i]</c>: BF16 widening is exact.</summary>
    public static void BFloat16ToSingle(Index1D i, ArrayView<ushort> source, ArrayView<float> destination) =>
        destination[i] = Interop.IntAsFloat((uint)source[i] << 16);
}
