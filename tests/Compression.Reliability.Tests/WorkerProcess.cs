// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;

namespace Compression.Reliability.Tests;

/// <summary>Starts Compression.Reliability.Worker (copied beside the test assembly by the project reference) as a
/// child process, so a test can limit its memory, change its processor count or kill it.</summary>
internal static class WorkerProcess
{
    /// <summary>The worker's entry assembly, run with <c>dotnet exec</c>.</summary>
    public static string AssemblyPath { get; } = Path.Combine(AppContext.BaseDirectory, "Compression.Reliability.Worker.dll");

    /// <summary>A start description for <c>dotnet exec Worker.dll args…</c> with redirected output.</summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("exec");
        info.ArgumentList.Add(AssemblyPath);
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        if (environment is not null)
        {
            foreach ((string key, string value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        return info;
    }

    /// <summary>Runs the worker to completion and returns its exit code and output.</summary>
    public static (int ExitCode, string Output, string Error) Run(IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        using Process process = Process.Start(StartInfo(args, environment))!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"The worker ({string.Join(' ', args)}) did not finish in time.");
        }

        return (process.ExitCode, output.Result, error.Result);
    }
}
