// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Fuzzing;
using SharpFuzz;

// Compression.Fuzzing <target>                      run under afl-fuzz (SharpFuzz persistent mode; see run-afl.sh)
// Compression.Fuzzing <target> --replay <dir|file>  run files through the target without AFL; exit 1 on the first escape
// Compression.Fuzzing <target> --mutate <n> <seed>  n seeded mutations of corpus/<target> (the CI mutator, longer)
// Compression.Fuzzing --generate-corpus <dir>       write the seed corpus (run once; the seeds are committed)
// Compression.Fuzzing --list                        print the target names
if (args is ["--list"])
{
    foreach (string name in FuzzTargets.All.Keys)
    {
        Console.WriteLine(name);
    }

    return 0;
}

if (args is ["--generate-corpus", string output])
{
    int written = CorpusGenerator.Write(output);
    Console.WriteLine($"{written} seeds written under {output}");
    return 0;
}

if (args is [string mutateTarget, "--mutate", string countText, string seedText] && FuzzTargets.All.TryGetValue(mutateTarget, out FuzzTarget? mutated))
{
    string seedFolder = Path.Combine(AppContext.BaseDirectory, "corpus", mutateTarget);
    byte[][] seeds = Directory.GetFiles(seedFolder).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
    var mutator = new FuzzMutator(seeds, int.Parse(seedText, System.Globalization.CultureInfo.InvariantCulture));
    int count = int.Parse(countText, System.Globalization.CultureInfo.InvariantCulture);
    var clock = System.Diagnostics.Stopwatch.StartNew();
    for (int i = 0; i < count; i++)
    {
        byte[] input = mutator.Next();
        try
        {
            mutated(input);
        }
        catch (Exception e)
        {
            string crash = Path.Combine(Path.GetTempPath(), $"crash-{mutateTarget}-{seedText}-{i}");
            File.WriteAllBytes(crash, input);
            Console.Error.WriteLine($"mutation {i}: {e}\ninput saved to {crash}");
            return 1;
        }
    }

    Console.WriteLine($"{count} mutations of {seeds.Length} seeds through {mutateTarget} in {clock.Elapsed.TotalSeconds:F0} s; nothing but documented exceptions.");
    return 0;
}

if (args.Length is not (1 or 3) || !FuzzTargets.All.TryGetValue(args[0], out FuzzTarget? target) || args.Length == 3 && args[1] != "--replay")
{
    Console.Error.WriteLine($"usage: Compression.Fuzzing <target> [--replay <dir|file>] | --generate-corpus <dir> | --list; targets: {string.Join(", ", FuzzTargets.All.Keys)}");
    return 2;
}

if (args.Length == 3)
{
    string[] files = Directory.Exists(args[2])
        ? Directory.GetFiles(args[2], "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray()
        : [args[2]];
    foreach (string file in files)
    {
        try
        {
            target(File.ReadAllBytes(file));
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"{file}: {e}");
            return 1;
        }
    }

    Console.WriteLine($"{files.Length} files replayed through {args[0]}; nothing but documented exceptions.");
    return 0;
}

// Persistent mode: one process runs many inputs; SharpFuzz reports an escaping exception to AFL as a crash.
Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
});
return 0;
