// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;

namespace Compression.Gpu.Runtime;

/// <summary>
/// Resolves a <see cref="ComputeDevice"/> request to the process-wide GPU context or to the CPU. The context is opened
/// once, on the first request that could use it, and kept for the life of the process (opening one compiles nothing,
/// but probing the drivers takes tens of milliseconds); ILGPU's CPU simulator is never selected.
/// </summary>
/// <remarks>
/// Work that runs on the shared context must hold <see cref="GpuContext.SyncRoot"/>: one ILGPU accelerator has one
/// default stream, and compressors are documented as shareable between threads.
/// </remarks>
public static class GpuSelection
{
    /// <summary>The environment variable that overrides <see cref="ComputeDevice.Auto"/>: <c>auto</c>, <c>cpu</c> or <c>gpu</c>.</summary>
    public const string EnvironmentVariable = "COMPRESSION_DEVICE";

    private static readonly Lock s_gate = new();
    private static GpuContext? s_shared;
    private static string? s_reason;
    private static readonly AsyncLocal<GpuContext?> s_override = new();

    /// <summary>
    /// The GPU to run on for <paramref name="requested"/>, or null for the CPU.
    /// </summary>
    /// <param name="requested">The options' device.</param>
    /// <param name="worthIt">For <see cref="ComputeDevice.Auto"/>: whether the work is large enough (and supported)
    /// for the GPU; ignored otherwise.</param>
    /// <param name="operation">The operation's name, for the exception message.</param>
    /// <exception cref="NotSupportedException"><see cref="ComputeDevice.Gpu"/> was asked for (in the options or by
    /// <c>COMPRESSION_DEVICE=gpu</c>) and no GPU can be opened; the message says what was found.</exception>
    /// <exception cref="InvalidOperationException"><c>COMPRESSION_DEVICE</c> holds something other than auto, cpu or gpu.</exception>
    public static GpuContext? Select(ComputeDevice requested, bool worthIt, string operation)
    {
        ComputeDevice device = requested == ComputeDevice.Auto ? FromEnvironment(Environment.GetEnvironmentVariable(EnvironmentVariable)) : requested;
        switch (device)
        {
            case ComputeDevice.Cpu:
                return null;
            case ComputeDevice.Gpu:
                return TryGetShared(out GpuContext? gpu, out string reason)
                    ? gpu
                    : throw new NotSupportedException($"{operation}: the GPU was requested (ComputeDevice.Gpu) but none can be used. {reason}");
            default:
                return worthIt && TryGetShared(out GpuContext? found, out _) ? found : null;
        }
    }

    /// <summary>The process-wide GPU context, opened on first use (CUDA first, then OpenCL).</summary>
    /// <param name="gpu">The shared context (do not dispose it), or null.</param>
    /// <param name="reason">The device chosen, or why there is none.</param>
    public static bool TryGetShared(out GpuContext? gpu, out string reason)
    {
        lock (s_gate)
        {
            if (s_override.Value is { } chosen)
            {
                gpu = chosen;
                reason = $"{gpu.Kind} '{gpu.DeviceName}' (chosen with UseContext)";
                return true;
            }

            if (s_reason is null)
            {
                GpuContext.TryCreateBest(out s_shared, out s_reason);
                if (s_shared is not null)
                {
                    GpuContext opened = s_shared;
                    AppDomain.CurrentDomain.ProcessExit += (_, _) => opened.Dispose();
                }
            }

            gpu = s_shared;
            reason = s_reason;
            return gpu is not null;
        }
    }

    /// <summary>Parses <c>COMPRESSION_DEVICE</c>: unset or empty means <see cref="ComputeDevice.Auto"/>.</summary>
    /// <exception cref="InvalidOperationException">Another value.</exception>
    internal static ComputeDevice FromEnvironment(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => ComputeDevice.Auto,
        "cpu" => ComputeDevice.Cpu,
        "gpu" or "cuda" => ComputeDevice.Gpu,
        _ => throw new InvalidOperationException($"{EnvironmentVariable}='{value}' is not a device: use auto, cpu or gpu."),
    };

    /// <summary>
    /// Routes the GPU work of compressors started from this execution context (this thread and the tasks it starts)
    /// to <paramref name="gpu"/> instead of the shared context, until the returned scope is disposed: a device other
    /// than the first, or ILGPU's CPU simulator when testing the GPU routes on a machine without a GPU.
    /// </summary>
    /// <param name="gpu">The context to use; the caller keeps ownership.</param>
    /// <returns>A scope that restores the previous choice.</returns>
    public static IDisposable UseContext(GpuContext gpu)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        GpuContext? previous = s_override.Value;
        s_override.Value = gpu;
        return new Restore(previous);
    }

    private sealed class Restore(GpuContext? previous) : IDisposable
    {
        public void Dispose() => s_override.Value = previous;
    }
}
