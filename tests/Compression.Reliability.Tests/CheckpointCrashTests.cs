// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text.Json;
using Compression.Safetensors;
using Xunit.Abstractions;

namespace Compression.Reliability.Tests;

/// <summary>
/// Crash consistency: the worker quantizing a checkpoint is killed with SIGKILL at seeded random points. After every
/// kill the folder it was overwriting still holds the previous complete output (or, if the kill came after the commit,
/// the new complete output), no file under a final name is partial, leftovers are hidden temporary files that
/// <see cref="SafetensorsCheckpoint.Open"/> ignores, and a later run completes with the reference bytes.
/// </summary>
[Collection(CheckpointStreamingCollection.Name)]
public sealed class CheckpointCrashTests(CheckpointStreamingFixture fixture, ITestOutputHelper output)
{
    private const int Seed = 20261202;

    [Fact]
    public void CheckpointQuantizer_KilledAtRandomPointsWhileOverwriting_KeepsThePreviousOutputAndCompletesLater()
    {
        string folder = fixture.NewFolder("kill");
        string target = Path.Combine(folder, "out");
        Directory.CreateDirectory(target);
        string[] previous = [Path.Combine(fixture.W8Reference, "model.safetensors"), Path.Combine(fixture.W8Reference, "config.json")];
        Restore(previous, target);
        string[] old = CheckpointResumeTests.Snapshot(target);
        string[] updated = Snapshot(fixture.W4Reference);

        var random = new Random(Seed);
        const int Kills = 20;
        int intact = 0, committed = 0, window = 0, finished = 0, leftovers = 0;
        for (int i = 0; i < Kills; i++)
        {
            // A seeded point: after a random number of modules plus up to 50 ms, or (every fourth kill) after the last
            // module, up to 400 ms into assembling and committing the output.
            (int modules, int delay) = i % 4 == 3
                ? (CheckpointStreamingFixture.Modules, random.Next(400))
                : (1 + random.Next(CheckpointStreamingFixture.Modules), random.Next(50));
            if (!CheckpointStreamingFixture.RunAndKill(modules, delay, fixture.Input, target, "W4A16"))
            {
                finished++;
            }

            string[] now = Snapshot(target);
            leftovers += Directory.GetFiles(target).Count(f => Path.GetFileName(f).StartsWith('.'));
            AssertOnlyHiddenLeftovers(target);
            if (now.SequenceEqual(Visible(old)))
            {
                intact++;
            }
            else if (now.SequenceEqual(updated))
            {
                committed++;
            }
            else
            {
                // Killed between the two renames: new weights, old config, and the journal is still there to finish it.
                Assert.Equal([Visible(old)[0], updated[1]], now);
                Assert.True(Directory.Exists(CheckpointStreamingFixture.JournalOf(target)));
                window++;
            }

            using (SafetensorsCheckpoint opened = SafetensorsCheckpoint.Open(target))
            {
                Assert.Equal(Path.Combine(target, "model.safetensors"), opened.Path);
            }

            if (!now.SequenceEqual(Visible(old)))
            {
                Restore(previous, target);
            }
        }

        (int code, JsonElement? result, string error) = CheckpointStreamingFixture.Quantize(fixture.Input, target, "W4A16");
        Assert.True(code == 0, error);
        CheckpointStreamingFixture.AssertSameOutput(fixture.W4Reference, target);
        Assert.Empty(Directory.GetFiles(target).Where(f => Path.GetFileName(f).StartsWith('.')));
        output.WriteLine($"{Kills} seeded kill points: {intact} left the previous output intact, {committed} came after the " +
            $"commit (new output complete), {window} between the two renames, {finished} runs finished before the kill; " +
            $"{leftovers} hidden temporary files seen; the final run resumed {result!.Value.GetProperty("resumed").GetInt32()} modules " +
            "and wrote the reference bytes.");
        Assert.True(intact >= Kills / 3, $"only {intact} of {Kills} kills landed before the commit; the test is not testing");
    }

    [Fact]
    public void CheckpointQuantizer_KilledWritingAFreshFolder_LeavesNothingOrCompleteFiles()
    {
        string folder = fixture.NewFolder("fresh");
        string[] updated = Snapshot(fixture.W4Reference);
        var random = new Random(Seed + 1);
        int empty = 0, complete = 0;
        const int Kills = 8;
        for (int i = 0; i < Kills; i++)
        {
            string target = Path.Combine(folder, $"out{i}");
            // Half the kills while modules are computed, half while the output is assembled and committed.
            (int modules, int delay) = i % 2 == 0
                ? (1 + random.Next(CheckpointStreamingFixture.Modules), random.Next(50))
                : (CheckpointStreamingFixture.Modules, random.Next(1500));
            CheckpointStreamingFixture.RunAndKill(modules, delay, fixture.Input, target, "W4A16");
            if (!Directory.Exists(target) || Snapshot(target).Length == 0)
            {
                empty++;
                continue;
            }

            using (SafetensorsCheckpoint opened = SafetensorsCheckpoint.Open(target))
            {
                Assert.Equal(Path.Combine(target, "model.safetensors"), opened.Path);
            }


            AssertOnlyHiddenLeftovers(target);
            string[] now = Snapshot(target);
            // Complete files only: both, or the weights alone when the kill fell between the two renames.
            Assert.True(now.SequenceEqual(updated) || now.SequenceEqual([updated[1]]), string.Join(", ", now));
            complete++;
        }

        output.WriteLine($"{Kills} kills into fresh folders: {empty} left no output file, {complete} left complete files");
    }

    /// <summary>The visible files with their hashes (hidden temporary files left out).</summary>
    private static string[] Snapshot(string folder) => Visible(CheckpointResumeTests.Snapshot(folder));

    private static string[] Visible(string[] snapshot) => snapshot.Where(s => !s.StartsWith('.')).ToArray();

    private static void AssertOnlyHiddenLeftovers(string folder)
    {
        foreach (string file in Directory.GetFiles(folder))
        {
            string name = Path.GetFileName(file);
            Assert.True(name is "model.safetensors" or "config.json" || (name.StartsWith('.') && name.EndsWith(".tmp", StringComparison.Ordinal)),
                $"unexpected file '{name}' in the output folder");
        }
    }

    private static void Restore(string[] files, string folder)
    {
        foreach (string file in files)
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        }
    }
}
