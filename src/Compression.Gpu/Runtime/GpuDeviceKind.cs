// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Gpu.Runtime;

/// <summary>The kind of accelerator a <see cref="GpuContext"/> runs on.</summary>
public enum GpuDeviceKind
{
    /// <summary>An NVIDIA GPU through CUDA.</summary>
    Cuda,

    /// <summary>A GPU through OpenCL.</summary>
    OpenCL,

    /// <summary>ILGPU's CPU accelerator: a slow, single-process simulator for testing kernels, never a fast path.</summary>
    CpuSimulator,
}
