// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using Compression.Fuzzing;
using Xunit.Abstractions;

namespace Compression.Reliability.Tests;

/// <summary>
/// The CI mode of the fuzzing harnesses (tests/Compression.Fuzzing): every committed corpus file, seeds and crash
/// reproducers alike, through every target, then a bounded seeded mutation run per target. A target returns normally
/// when its parser accepted the input or refused it with the documented exception; anything else escapes and fails
/// the test with the input attached. The long AFL++ runs are in run-afl.sh.
/// </summary>
public sealed class FuzzCorpusReplayTests(ITestOutputHelper output)
{
    /// <summary>Fixed per target so the run is reproducible; about 2–3 s each on a 2-core CI machine.</summary>
    private static readonly Dictionary<string, int> Iterations = new(StringComparer.Ordinal)
    {
        ["safetensors"] = 9000,
        ["safetensors-header"] = 20000,
        ["index"] = 5000,
        ["shard"] = 1600,
        ["config"] = 20000,
        ["compressed-tensor"] = 2000,
        ["compressed-tensors-codec"] = 10000,
        ["recipe"] = 2500,
        ["bpe"] = 500,
    };

    private const int MutationSeed = 20261202;

    public static TheoryData<string> Targets() => new(FuzzTargets.All.Keys);

    [Fact]
    public void Corpus_EveryTargetHasSeedsAndAnIterationCount()
    {
        foreach (string target in FuzzTargets.All.Keys)
        {
            Assert.True(Iterations.ContainsKey(target), $"No iteration count for target '{target}'.");
            Assert.NotEmpty(CorpusFiles(target));
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Replay_EveryCorpusFile_OnlyDocumentedExceptions(string target)
    {
        // Every target also gets the other targets' files: a safetensors seed is a fine JSON-parser input and back.
        string[] files = FuzzTargets.All.Keys.SelectMany(CorpusFiles).ToArray();
        FuzzTarget run = FuzzTargets.All[target];
        foreach (string file in files)
        {
            Execute(run, target, File.ReadAllBytes(file), Path.GetRelativePath(CorpusRoot, file));
        }

        output.WriteLine($"{target}: {files.Length} corpus files replayed");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void SeededMutations_FixedBudget_OnlyDocumentedExceptions(string target)
    {
        byte[][] seeds = CorpusFiles(target).Select(File.ReadAllBytes).ToArray();
        var mutator = new FuzzMutator(seeds, MutationSeed);
        FuzzTarget run = FuzzTargets.All[target];
        int iterations = Iterations[target];
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            Execute(run, target, mutator.Next(), $"mutation {i} of seed {MutationSeed}");
        }

        output.WriteLine($"{target}: {iterations} seeded mutations in {clock.Elapsed.TotalSeconds:F1} s");
    }

    private static void Execute(FuzzTarget run, string target, byte[] input, string label)
    {
        try
        {
            run(input);
        }
        catch (Exception e)
        {
            Assert.Fail($"Target '{target}', {label}: {e.GetType()} escaped: {e.Message}\n" +
                        $"input ({input.Length} bytes, base64): {(input.Length <= 8192 ? Convert.ToBase64String(input) : "(too long)")}\n{e}");
        }
    }

    private static string CorpusRoot { get; } = FindCorpus();

    private static string[] CorpusFiles(string target)
    {
        string folder = Path.Combine(CorpusRoot, target);
        return Directory.Exists(folder)
            ? Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray()
            : [];
    }

    private static string FindCorpus()
    {
        // The committed corpus in the source tree (so crash reproducers added there are replayed without a rebuild),
        // else the copy beside the harness.
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "tests", "Compression.Fuzzing", "corpus");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return Path.Combine(AppContext.BaseDirectory, "corpus");
    }
}
