// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Reliability.Worker;

/// <summary>Prints its arguments and the processor count the runtime sees; the tests use it to check the plumbing
/// (that the worker starts, and that <c>DOTNET_PROCESSOR_COUNT</c> reaches it).</summary>
[WorkerCommand("echo")]
internal static class EchoCommand
{
    public static int Run(string[] args)
    {
        Console.WriteLine($"processors={Environment.ProcessorCount} args={string.Join(' ', args)}");
        return 0;
    }
}
