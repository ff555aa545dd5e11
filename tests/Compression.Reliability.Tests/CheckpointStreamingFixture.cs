// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Compression.Reliability.Worker;
using Compression.Testing;

namespace Compression.Reliability.Tests;

/// <summary>
/// A small synthetic Llama-like checkpoint (hidden 256, 7 layers: 49 linear weights, ~28 MB of F32), written once by
/// the worker, with the in-memory reference outputs for W4A16 and W8A16 that every streamed run must equal byte for
/// byte.
/// </summary>
public sealed class CheckpointStreamingFixture : IDisposable
{
    public const int Modules = 49;

    private readonly TemporaryDirectory _folder = RandomData.CreateTemporaryDirectory();

    public CheckpointStreamingFixture()
    {
        Input = _folder.File("input");
        (int code, _, string error) = WorkerProcess.Run(["make-synthetic-checkpoint", Input, "30000000", "F32", "11", "--hidden", "256"]);
        Assert.True(code == 0, error);
        W4Reference = _folder.File("reference-w4");
        W8Reference = _folder.File("reference-w8");
        Assert.Equal(Modules, InMemoryCheckpointReference.Quantize(Input, W4Reference, QuantizerOptions.W4A16).Count);
        Assert.Equal(Modules, InMemoryCheckpointReference.Quantize(Input, W8Reference, QuantizerOptions.W8A16).Count);
    }

    /// <summary>The input checkpoint folder.</summary>
    public string Input { get; }

    /// <summary>The in-memory path's W4A16 output folder.</summary>
    public string W4Reference { get; }

    /// <summary>The in-memory path's W8A16 output folder.</summary>
    public string W8Reference { get; }

    /// <summary>A fresh folder for one test.</summary>
    public string NewFolder(string name)
    {
        string path = _folder.File(name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(path);
        return path;
    }

    public void Dispose() => _folder.Dispose();

    /// <summary>SHA-256 of a file, streamed.</summary>
    public static string Hash(string path)
    {
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Asserts that two output folders hold the same model.safetensors and config.json bytes.</summary>
    public static void AssertSameOutput(string expected, string actual)
    {
        Assert.Equal(Hash(Path.Combine(expected, "model.safetensors")), Hash(Path.Combine(actual, "model.safetensors")));
        Assert.Equal(File.ReadAllText(Path.Combine(expected, "config.json")), File.ReadAllText(Path.Combine(actual, "config.json")));
    }

    /// <summary>Runs quantize-checkpoint to completion and parses its JSON line.</summary>
    public static (int ExitCode, JsonElement? Result, string Error) Quantize(params string[] args)
    {
        (int code, string output, string error) = WorkerProcess.Run(["quantize-checkpoint", .. args], timeout: TimeSpan.FromMinutes(3));
        string? line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        return (code, line is null ? null : JsonDocument.Parse(line).RootElement.Clone(), error);
    }

    /// <summary>The journal folder the quantizer keeps beside an output folder.</summary>
    public static string JournalOf(string output) =>
        Path.Combine(Path.GetDirectoryName(output)!, "." + Path.GetFileName(output) + ".quantize-journal");

    /// <summary>
    /// Runs quantize-checkpoint with <c>--progress</c> and kills it (SIGKILL) <paramref name="delayMs"/> ms after its
    /// <paramref name="modules"/>-th module is reported; returns false if it exited on its own first.
    /// </summary>
    public static bool RunAndKill(int modules, int delayMs, params string[] args)
    {
        using Process worker = Process.Start(WorkerProcess.StartInfo(["quantize-checkpoint", .. args, "--progress"]))!;
        worker.StandardError.ReadToEndAsync();
        int seen = 0;
        while (seen < modules && worker.StandardOutput.ReadLine() is string line)
        {
            if (line.StartsWith("progress ", StringComparison.Ordinal))
            {
                seen++;
            }
        }

        Task<string> rest = worker.StandardOutput.ReadToEndAsync();
        if (seen < modules || worker.WaitForExit(delayMs))
        {
            worker.WaitForExit();
            return false;
        }

        worker.Kill();
        worker.WaitForExit();
        return true;
    }
}

[CollectionDefinition(Name)]
public sealed class CheckpointStreamingCollection : ICollectionFixture<CheckpointStreamingFixture>
{
    public const string Name = "checkpoint streaming";
}
