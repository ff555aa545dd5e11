// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using TorchSharp;

namespace Compression.Tool.Infrastructure;

/// <summary>Checks that libtorch loads before a command that needs it starts, so a missing or unloadable native
/// library is one clear error (exit code 4) rather than a type-initialisation failure deep in a command.</summary>
internal static class NativeLibraries
{
    /// <summary>Loads TorchSharp's native libraries (CPU).</summary>
    public static void EnsureTorchLoads()
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Exception inner = e;
            while (inner.InnerException is not null)
            {
                inner = inner.InnerException;
            }

            throw new ToolException(ExitCodes.OperationFailed,
                $"libtorch (TorchSharp's native libraries) could not be loaded: {inner.Message} " +
                "The packaged tool carries a libLibTorchSharp.so patched for libstdc++ older than GCC 13 (Debian 12); see the tool's README.", e);
        }
    }
}
