// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Reliability.Worker;

/// <summary>Prints one <c>name sha256</c> line per case of <see cref="DeterminismDigest"/> (all cases, or those whose
/// name starts with the optional first argument), then <c>processors=n</c> on standard error (with each case's time
/// when the second argument is <c>--timings</c>). The determinism tests
/// run it under several <c>DOTNET_PROCESSOR_COUNT</c> values and compare the lines.</summary>
[WorkerCommand("digest")]
internal static class DeterminismDigestCommand
{
    public static int Run(string[] args)
    {
        foreach (string line in DeterminismDigest.Run(args.Length > 0 && args[0] != "all" ? args[0] : null,
                     args.Length > 1 && args[1] == "--timings" ? Console.Error : null))
        {
            Console.WriteLine(line);
        }

        Console.Error.WriteLine($"processors={Environment.ProcessorCount}");
        return 0;
    }
}
