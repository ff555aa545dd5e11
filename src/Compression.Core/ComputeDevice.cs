// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression;

/// <summary>Where a compressor runs its heavy arithmetic.</summary>
/// <remarks>
/// <see cref="Auto"/> takes a CUDA or OpenCL GPU when the process can open one and the work is large enough to pay for
/// the transfers, and the CPU SIMD path otherwise; no GPU is ever required. The environment variable
/// <c>COMPRESSION_DEVICE</c> (<c>auto</c>, <c>cpu</c> or <c>gpu</c>) overrides <see cref="Auto"/> for a whole process,
/// which is how a script or a CI job pins the device without touching code; an explicit <see cref="Cpu"/> or
/// <see cref="Gpu"/> in the options always wins.
/// </remarks>
public enum ComputeDevice
{
    /// <summary>The GPU when one is present and the work is large enough, else the CPU (the default).</summary>
    Auto = 0,

    /// <summary>Always the CPU SIMD path.</summary>
    Cpu,

    /// <summary>Always the GPU; fails with <see cref="System.NotSupportedException"/> when none can be opened or the
    /// operation has no GPU kernel for its options.</summary>
    Gpu,
}
