// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Compression.Gpu.Runtime;

/// <summary>
/// NVIDIA's cuBLAS through ILGPU.Algorithms' bindings, loaded on first use for one <see cref="GpuContext"/>, or the
/// reason it is not there. Optional everywhere: callers fall back to their own kernels when <see cref="Handle"/> is null.
/// </summary>
/// <remarks>
/// <para>ILGPU.Algorithms 1.5.3 looks for <c>libcublas.so.12</c>, <c>.11</c> and <c>.10</c> on Linux
/// (<c>cublas64_12.dll</c>, … on Windows), newest first, and calls only the v2 entry points (cublasCreate_v2,
/// cublasSgemm_v2, cublasSsyrk_v2, …), which CUDA 13's <c>libcublas.so.13</c> still exports under the same signatures.
/// A machine with CUDA 13 alone therefore needs a link named <c>libcublas.so.12</c> to its <c>libcublas.so.13</c> on
/// the loader's path (see the benchmark notes). Set <c>COMPRESSION_CUBLAS=0</c> to never load it.</para>
/// <para>Calls run on the accelerator's default stream, in the order of the kernels queued there, with cuBLAS's
/// default math mode (no TF32: float32 products) and its default atomics mode (off: results repeat bit for bit on one
/// device).</para>
/// </remarks>
internal sealed class CuBlasRoute : IDisposable
{
    private readonly Accelerator _accelerator;
    private readonly object _gate = new();
    private CuBlas? _handle;
    private bool _tried;
    private string _reason = "not tried yet";

    public CuBlasRoute(Accelerator accelerator) => _accelerator = accelerator;

    /// <summary>The cuBLAS handle on this context's device, or null (not CUDA, library missing, or switched off).</summary>
    public CuBlas? Handle
    {
        get
        {
            lock (_gate)
            {
                if (!_tried)
                {
                    _tried = true;
                    _handle = TryCreate(out _reason);
                }

                return _handle;
            }
        }
    }

    /// <summary>Which cuBLAS was loaded (its version), or why none was.</summary>
    public string Description
    {
        get
        {
            _ = Handle;
            return _reason;
        }
    }

    private CuBlas? TryCreate(out string reason)
    {
        if (Environment.GetEnvironmentVariable("COMPRESSION_CUBLAS") == "0")
        {
            reason = "switched off (COMPRESSION_CUBLAS=0)";
            return null;
        }

        if (_accelerator is not CudaAccelerator cuda)
        {
            reason = $"not a CUDA accelerator ({_accelerator.AcceleratorType})";
            return null;
        }

        try
        {
            var handle = new CuBlas(cuda);
            reason = $"cuBLAS {handle.Version}";
            return handle;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // DllNotFoundException (no libcublas.so.10–12 on the path), EntryPointNotFoundException, CuBlasException:
            // the caller's own kernel runs instead.
            reason = $"cuBLAS not loaded: {e.GetType().Name}: {e.Message}";
            return null;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _handle?.Dispose();
            _handle = null;
        }
    }
}
