// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using System.Text.Json;
using Compression.Reliability.Worker;
using Compression.Testing;
using Xunit.Abstractions;

namespace Compression.Reliability.Tests;

/// <summary>Streaming: a checkpoint four times larger than the memory the worker may use is quantized to completion,
/// its anonymous memory stays within a small multiple of the largest tensor, and the bytes equal the in-memory path's.</summary>
public sealed class CheckpointStreamingMemoryTests(ITestOutputHelper output)
{
    // 512 MB of F32 (hidden 1024, 8 layers of 13 M weights, embedding and head of 8 M each) under 128 MiB.
    private const long CheckpointBytes = 512_000_000;
    private const long LimitBytes = 128L << 20;

    // The largest weight the quantizer decodes: gate/up/down_proj, 3072 × 1024 float32.
    private const long LargestTensorBytes = 3072L * 1024 * 4;

    [Fact]
    public void CheckpointQuantizer_CheckpointFourTimesTheMemoryLimit_CompletesInBoundedMemoryWithTheInMemoryPathsBytes()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string input = folder.File("input"), streamed = folder.File("streamed"), reference = folder.File("reference");
        (int made, string madeOutput, string madeError) = WorkerProcess.Run(["make-synthetic-checkpoint", input, CheckpointBytes.ToString(), "F32", "5"]);
        Assert.True(made == 0, madeError);
        long inputBytes = new FileInfo(Path.Combine(input, "model.safetensors")).Length;
        Assert.True(inputBytes > 3 * LimitBytes, $"the checkpoint ({inputBytes} bytes) must be well beyond the limit");

        string[] args = ["quantize-checkpoint", input, streamed, "W4A16"];
        using MemoryCgroup? cgroup = MemoryCgroup.TryCreate(LimitBytes);
        string how;
        ProcessStartInfo start;
        if (cgroup is not null)
        {
            how = $"cgroup v1 memory limit {LimitBytes >> 20} MiB ({cgroup.Path})";
            start = cgroup.StartInfo(args);
        }
        else
        {
            // No writable memory cgroup (CI container): cap the GC heap instead and rely on the sampled RssAnon.
            how = $"no writable cgroup: DOTNET_GCHeapHardLimit {LimitBytes >> 20} MiB";
            start = WorkerProcess.StartInfo(args, new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x" + LimitBytes.ToString("x") });
        }

        var clock = Stopwatch.StartNew();
        string stdout, stderr;
        using (Process worker = Process.Start(start)!)
        {
            Task<string> error = worker.StandardError.ReadToEndAsync();
            stdout = worker.StandardOutput.ReadToEnd();
            Assert.True(worker.WaitForExit(TimeSpan.FromMinutes(4)), "the streamed run did not finish");
            stderr = error.Result;
            Assert.True(worker.ExitCode == 0, $"exit {worker.ExitCode} under {how}: {stderr}");
        }

        double seconds = clock.Elapsed.TotalSeconds;
        JsonElement result = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        long peakAnon = result.GetProperty("peak_rss_anon_bytes").GetInt64();
        long hwm = result.GetProperty("vm_hwm_bytes").GetInt64();
        string charged = cgroup is null ? "n/a" : $"{cgroup.MaxUsageBytes >> 20} MiB (page cache included; limit hit {cgroup.FailCount} times, cache reclaimed)";
        output.WriteLine($"{how}: {inputBytes >> 20} MiB checkpoint, {result.GetProperty("modules").GetInt32()} modules in {seconds:F1} s; " +
            $"peak RssAnon {peakAnon >> 20} MiB, VmHWM {hwm >> 20} MiB (memory-mapped input pages included), cgroup max usage {charged}, " +
            $"GC heap {result.GetProperty("gc_heap_bytes").GetInt64() >> 20} MiB, largest tensor {LargestTensorBytes >> 20} MiB");

        // Bound: the runtime's own footprint (~30 MiB) plus a few copies of the largest tensor in flight (float32
        // weight, codes, scales, encoded parts, garbage not yet collected); ten copies is generous and still far below
        // the 512 MB a model-sized buffer would take.
        Assert.True(peakAnon > 0, "RssAnon was not sampled");
        Assert.True(peakAnon < 10 * LargestTensorBytes, $"peak RssAnon {peakAnon} bytes exceeds 10 × the largest tensor ({LargestTensorBytes} bytes)");
        Assert.True(peakAnon < LimitBytes);

        // The reference: every weight quantized in memory, one final write (the code path before streaming).
        InMemoryCheckpointReference.Quantize(input, reference, QuantizerOptions.W4A16);
        CheckpointStreamingFixture.AssertSameOutput(reference, streamed);
    }
}
