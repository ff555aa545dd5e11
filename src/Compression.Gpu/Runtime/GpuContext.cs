// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace Compression.Gpu.Runtime;

/// <summary>
/// One ILGPU context and accelerator, with the kernels loaded on it. Create one per process and device, reuse it,
/// dispose it at the end: loading a kernel compiles it, so the cache is what makes repeated calls cheap.
/// </summary>
/// <example>
/// <code>
/// if (GpuContext.TryCreateBest(out GpuContext? gpu, out string reason))
/// {
///     using (gpu) { GpuConversions.ConvertToSingle(gpu, bf16, destination); }
/// }
/// else
/// {
///     Console.WriteLine($"CPU path: {reason}");
/// }
/// </code>
/// </example>
public sealed class GpuContext : IDisposable
{
    private readonly Context _context;
    private readonly ConcurrentDictionary<object, Delegate> _kernels = new();

    private GpuContext(Context context, Accelerator accelerator, GpuDeviceKind kind)
    {
        _context = context;
        Accelerator = accelerator;
        Kind = kind;
        CuBlas = new CuBlasRoute(accelerator);
    }

    /// <summary>The ILGPU accelerator (for kernels of other packages of this library).</summary>
    public Accelerator Accelerator { get; }

    /// <summary>What the accelerator is.</summary>
    public GpuDeviceKind Kind { get; }

    /// <summary>The lock that work on this context's default stream holds when the context is shared between threads
    /// (<see cref="GpuSelection"/>): kernels, copies and synchronisations of one caller must not interleave with
    /// another's.</summary>
    public Lock SyncRoot { get; } = new();

    /// <summary>cuBLAS on this device when it can be loaded (CUDA only), for routes that prefer it to our kernels.</summary>
    internal CuBlasRoute CuBlas { get; }

    /// <summary>The device's name as the driver reports it.</summary>
    public string DeviceName => Accelerator.Name;

    /// <summary>Creates a context on the best GPU: CUDA first, then OpenCL.</summary>
    /// <exception cref="NotSupportedException">No GPU is usable; the message lists what was found.</exception>
    public static GpuContext CreateBest() =>
        TryCreateBest(out GpuContext? context, out string reason) ? context! : throw new NotSupportedException(reason);

    /// <summary>Tries to create a context on the best GPU (CUDA, then OpenCL); never picks the CPU simulator.</summary>
    /// <param name="context">The context, or null.</param>
    /// <param name="reason">Why none was created, or the device chosen.</param>
    public static bool TryCreateBest(out GpuContext? context, out string reason)
    {
        Context ilgpu;
        try
        {
            ilgpu = Context.Create(builder => builder.Default().EnableAlgorithms());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Probing the drivers can fail on a machine with a broken CUDA or OpenCL installation: that is "no GPU".
            context = null;
            reason = $"The GPU drivers could not be probed: {e.Message}";
            return false;
        }

        try
        {
            Device? device = ilgpu.Devices.FirstOrDefault(d => d.AcceleratorType == AcceleratorType.Cuda)
                ?? ilgpu.Devices.FirstOrDefault(d => d.AcceleratorType == AcceleratorType.OpenCL);
            if (device is null)
            {
                reason = "No CUDA or OpenCL device was found (devices seen: " +
                         string.Join(", ", ilgpu.Devices.Select(d => $"{d.AcceleratorType} '{d.Name}'")) + ").";
                ilgpu.Dispose();
                context = null;
                return false;
            }

            Accelerator accelerator = device.CreateAccelerator(ilgpu);
            GpuDeviceKind kind = device.AcceleratorType == AcceleratorType.Cuda ? GpuDeviceKind.Cuda : GpuDeviceKind.OpenCL;
            context = new GpuContext(ilgpu, accelerator, kind);
            reason = $"{kind} '{accelerator.Name}'";
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A driver that is present but broken must not take the process down: report and fall back to the CPU.
            ilgpu.Dispose();
            context = null;
            reason = $"The GPU could not be initialised: {e.Message}";
            return false;
        }
    }

    /// <summary>Creates a context on ILGPU's CPU simulator, for testing kernels on machines without a GPU.</summary>
    public static GpuContext CreateCpuSimulator()
    {
        // 32-lane warps as on NVIDIA hardware, so warp-cooperative kernels (shuffles) run here as they will on a GPU.
        Context ilgpu = Context.Create(builder => builder.CPU(ILGPU.Runtime.CPU.CPUDeviceKind.Nvidia).EnableAlgorithms());
        return new GpuContext(ilgpu, ilgpu.CreateCPUAccelerator(0), GpuDeviceKind.CpuSimulator);
    }

    /// <summary>Returns the cached kernel for <paramref name="key"/>, loading (compiling) it on first use.</summary>
    public TDelegate GetOrLoadKernel<TDelegate>(object key, Func<Accelerator, TDelegate> load)
        where TDelegate : Delegate
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(load);
        return (TDelegate)_kernels.GetOrAdd(key, _ => load(Accelerator));
    }

    /// <summary>How many kernels have been loaded on this context (tests use it to see that a route ran here).</summary>
    public int LoadedKernelCount => _kernels.Count;

    /// <summary>Releases the accelerator and the context.</summary>
    public void Dispose()
    {
        _kernels.Clear();
        CuBlas.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }
}
