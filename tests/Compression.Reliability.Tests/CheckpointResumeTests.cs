// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text.Json;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Xunit.Abstractions;

namespace Compression.Reliability.Tests;

/// <summary>Layer-level resume: a run crashed after N of M modules continues with the other M − N, bit-identically;
/// a journal for other options or another input is not reused; cancellation leaves the output folder alone.</summary>
[Collection(CheckpointStreamingCollection.Name)]
public sealed class CheckpointResumeTests(CheckpointStreamingFixture fixture, ITestOutputHelper output)
{
    private const int SigKillExitCode = 137;

    [Fact]
    public void CheckpointQuantizer_CrashAfterNModules_ResumesComputingOnlyTheRest()
    {
        string folder = fixture.NewFolder("resume");
        string target = Path.Combine(folder, "out");
        (int crashed, _, _) = CheckpointStreamingFixture.Quantize(fixture.Input, target, "W4A16", "--crash-after", "20");
        Assert.Equal(SigKillExitCode, crashed);
        Assert.False(Directory.Exists(target), "a crashed run must not create the output folder");
        Assert.Equal(20, Directory.GetFiles(CheckpointStreamingFixture.JournalOf(target), "*.safetensors").Length);

        (int code, JsonElement? result, string error) = CheckpointStreamingFixture.Quantize(fixture.Input, target, "W4A16");
        Assert.True(code == 0, error);
        Assert.Equal(CheckpointStreamingFixture.Modules, result!.Value.GetProperty("modules").GetInt32());
        Assert.Equal(20, result.Value.GetProperty("resumed").GetInt32());
        Assert.Equal(CheckpointStreamingFixture.Modules - 20, result.Value.GetProperty("computed").GetInt32());
        CheckpointStreamingFixture.AssertSameOutput(fixture.W4Reference, target);
        Assert.False(Directory.Exists(CheckpointStreamingFixture.JournalOf(target)), "the journal is deleted once the output is in place");
        output.WriteLine($"crash after 20 of {CheckpointStreamingFixture.Modules}: resumed 20, computed {CheckpointStreamingFixture.Modules - 20}; bytes equal the in-memory path's");
    }

    [Fact]
    public void CheckpointQuantizer_JournalForOtherOptions_IsDiscarded()
    {
        string target = Path.Combine(fixture.NewFolder("options"), "out");
        Assert.Equal(SigKillExitCode, CheckpointStreamingFixture.Quantize(fixture.Input, target, "W4A16", "--crash-after", "10").ExitCode);

        (int code, JsonElement? result, string error) = CheckpointStreamingFixture.Quantize(fixture.Input, target, "W8A16");
        Assert.True(code == 0, error);
        Assert.Equal(0, result!.Value.GetProperty("resumed").GetInt32());
        Assert.Equal(CheckpointStreamingFixture.Modules, result.Value.GetProperty("computed").GetInt32());
        Assert.Contains("other options", result.Value.GetProperty("discarded_journal").GetString(), StringComparison.Ordinal);
        Assert.Contains("Discarding the journal", error, StringComparison.Ordinal);
        CheckpointStreamingFixture.AssertSameOutput(fixture.W8Reference, target);
    }

    [Fact]
    public void CheckpointQuantizer_ResumeNever_ComputesEverything()
    {
        string target = Path.Combine(fixture.NewFolder("never"), "out");
        Assert.Equal(SigKillExitCode, CheckpointStreamingFixture.Quantize(fixture.Input, target, "W4A16", "--crash-after", "10").ExitCode);
        (int code, JsonElement? result, string error) = CheckpointStreamingFixture.Quantize(fixture.Input, target, "W4A16", "--resume", "never");
        Assert.True(code == 0, error);
        Assert.Equal(0, result!.Value.GetProperty("resumed").GetInt32());
        CheckpointStreamingFixture.AssertSameOutput(fixture.W4Reference, target);
    }

    [Fact]
    public void CheckpointQuantizer_InputEditedInPlaceOrConfigChanged_ReusesNothingStale()
    {
        string folder = fixture.NewFolder("edited");
        string input = Path.Combine(folder, "input");
        Directory.CreateDirectory(input);
        foreach (string file in Directory.GetFiles(fixture.Input))
        {
            File.Copy(file, Path.Combine(input, Path.GetFileName(file)));
        }

        string target = Path.Combine(folder, "out");
        Assert.Equal(SigKillExitCode, CheckpointStreamingFixture.Quantize(input, target, "W4A16", "--crash-after", "10").ExitCode);

        // Same header, same length, one computed weight's bytes changed: only that module is recomputed.
        string edited = "model.layers.0.self_attn.k_proj.weight";
        long offset;
        using (SafetensorsFile file = SafetensorsFile.Open(Path.Combine(input, "model.safetensors")))
        {
            offset = 8 + file.HeaderLength + file.GetInfo(edited).DataBegin;
        }

        using (var stream = new FileStream(Path.Combine(input, "model.safetensors"), FileMode.Open, FileAccess.Write))
        {
            stream.Position = offset;
            stream.Write(BitConverter.GetBytes(0.5f));
        }

        (int code, JsonElement? result, string error) = CheckpointStreamingFixture.Quantize(input, target, "W4A16");
        Assert.True(code == 0, error);
        Assert.Equal(9, result!.Value.GetProperty("resumed").GetInt32());
        Assert.Equal(CheckpointStreamingFixture.Modules - 9, result.Value.GetProperty("computed").GetInt32());
        string reference = Path.Combine(folder, "reference");
        Worker.InMemoryCheckpointReference.Quantize(input, reference, QuantizerOptions.W4A16);
        CheckpointStreamingFixture.AssertSameOutput(reference, target);
        Assert.NotEqual(CheckpointStreamingFixture.Hash(Path.Combine(fixture.W4Reference, "model.safetensors")),
            CheckpointStreamingFixture.Hash(Path.Combine(target, "model.safetensors")));

        // A different config.json is a different input: the whole journal goes.
        string again = Path.Combine(folder, "again");
        Assert.Equal(SigKillExitCode, CheckpointStreamingFixture.Quantize(input, again, "W4A16", "--crash-after", "10").ExitCode);
        File.AppendAllText(Path.Combine(input, "config.json"), " ");
        (code, result, error) = CheckpointStreamingFixture.Quantize(input, again, "W4A16");
        Assert.True(code == 0, error);
        Assert.Equal(0, result!.Value.GetProperty("resumed").GetInt32());
        Assert.NotNull(result.Value.GetProperty("discarded_journal").GetString());
    }

    [Fact]
    public void CheckpointQuantizer_Cancelled_ThrowsAndLeavesTheOutputFolderUntouched()
    {
        string folder = fixture.NewFolder("cancel");
        string target = Path.Combine(folder, "out");
        CheckpointQuantizer.Quantize(fixture.Input, target, QuantizerOptions.W8A16);
        string[] before = Snapshot(target);

        using var cancellation = new CancellationTokenSource();
        using var cancelNow = new ManualResetEventSlim();
        var canceller = new Thread(() =>
        {
            cancelNow.Wait();
            cancellation.Cancel();
        });
        canceller.Start();
        int reports = 0;
        var progress = new Recorder(_ =>
        {
            if (++reports == 15)
            {
                cancelNow.Set();
                SpinWait.SpinUntil(() => cancellation.IsCancellationRequested, TimeSpan.FromSeconds(10));
            }
        });
        Assert.ThrowsAny<OperationCanceledException>(() =>
            CheckpointQuantizer.Quantize(fixture.Input, target, QuantizerOptions.W4A16, progress, cancellation.Token));
        canceller.Join();
        Assert.Equal(15, reports);
        Assert.Equal(before, Snapshot(target));

        // The journal stays for resuming: the next run takes the 15 modules finished before the cancellation.
        CheckpointQuantizationResult result = CheckpointQuantizer.Quantize(fixture.Input, target, QuantizerOptions.W4A16);
        Assert.Equal(15, result.ModulesResumed);
        Assert.Equal(CheckpointStreamingFixture.Modules - 15, result.ModulesComputed);
        CheckpointStreamingFixture.AssertSameOutput(fixture.W4Reference, target);

        // Cancelled before it starts, into a fresh folder: nothing is created.
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        string fresh = Path.Combine(folder, "fresh");
        Assert.ThrowsAny<OperationCanceledException>(() =>
            CheckpointQuantizer.Quantize(fixture.Input, fresh, QuantizerOptions.W4A16, cancellationToken: cancelled.Token));
        Assert.False(Directory.Exists(fresh));
    }

    [Fact]
    public void CheckpointJournalOptions_UndefinedResume_ThrowsNamingTheProperty()
    {
        ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => new CheckpointJournalOptions { Resume = (CheckpointResume)7 });
        Assert.Equal("Resume", e.ParamName);
    }

    /// <summary>Every file in the folder, hidden ones included, with its SHA-256.</summary>
    internal static string[] Snapshot(string folder) =>
        Directory.GetFiles(folder).Order(StringComparer.Ordinal)
            .Select(f => Path.GetFileName(f) + " " + CheckpointStreamingFixture.Hash(f)).ToArray();

    private sealed class Recorder(Action<CompressionProgress> report) : IProgress<CompressionProgress>
    {
        public void Report(CompressionProgress value) => report(value);
    }
}
