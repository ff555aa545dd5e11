using Compression.Testing;

namespace Compression.Tool.Tests;

/// <summary>Help, usage errors and failures: each gets its documented exit code and one line on stderr, no stack trace
/// unless --verbose.</summary>
public class ErrorTests
{
    private static readonly string TinyStories = SharedData.File("tinystories-656k");
    private static readonly string Calibration = SharedData.File("tinystories", "val-sample.txt");

    [Theory]
    [InlineData("--help")]
    [InlineData("inspect", "--help")]
    [InlineData("quantize", "--help")]
    [InlineData("prune", "--help")]
    [InlineData("lowrank", "--help")]
    [InlineData("eval", "--help")]
    public void Help_ExitsZero_WithUsageAndTheExitCodes(params string[] args)
    {
        ToolRun run = ToolRun.Of(args);
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("Usage:", run.Stdout);
        Assert.Contains("130", run.Stdout);
        Assert.Contains("Exit codes:", run.Stdout);
    }

    [Fact]
    public void QuantizeHelp_ListsEverySchemeAndSaysW8A8Fp8DeclaresDynamicPerTokenActivations()
    {
        string help = ToolRun.Of("quantize", "--help").Stdout;
        foreach (string scheme in new[] { "w4a16", "w4a16-gptq", "w8a16", "w8a16-gptq", "w8a8-fp8", "fp8", "nvfp4", "nvfp4-gptq", "mxfp4", "mxfp4-gptq" })
        {
            Assert.Contains($"{scheme}:", help);
        }

        Assert.Contains("FP8_DYNAMIC", help);
        Assert.Contains("one scale per token", help);
        Assert.DoesNotContain("NOT declared", help);
    }

    public static TheoryData<int, string[]> Failures() => new()
    {
        { 3, ["inspect", "/nonexistent/checkpoint"] },
        { 3, ["eval", TinyStories, "--data", "/nonexistent/text.txt"] },
        { 3, ["eval", SharedData.File("llama-shakespeare-char"), "--data", Calibration] },          // no tokenizer.json there
        { 2, ["quantize", TinyStories, "--scheme", "w5a16", "--out", "/tmp/compress-never-written"] },
        { 2, ["quantize", TinyStories, "--scheme", "w4a16-gptq", "--out", "/tmp/compress-never-written"] },
        { 2, ["quantize", TinyStories, "--scheme", "w4a16", "--out", TinyStories] },
        { 2, ["quantize", TinyStories, "--out", "/tmp/compress-never-written"] },                      // --scheme missing
        { 2, ["prune", TinyStories, "--method", "wanda", "--sparsity", "0.5", "--out", "/tmp/compress-never-written"] },
        { 2, ["prune", TinyStories, "--method", "magnitude", "--sparsity", "1.5", "--out", "/tmp/compress-never-written"] },
        { 2, ["lowrank", TinyStories, "--rank", "8", "--energy", "0.9", "--out", "/tmp/compress-never-written"] },
        { 2, ["frobnicate"] },
        { 2, [] },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void Failure_GivesItsExitCode_AndOneErrorLineWithoutStackTrace(int expected, string[] args)
    {
        ToolRun run = ToolRun.Of(args);
        Assert.Equal(expected, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.StartsWith("compress: error: ", run.Stderr);
        Assert.DoesNotContain("   at ", run.Stderr);
        Assert.False(Directory.Exists("/tmp/compress-never-written"));
    }

    [Fact]
    public void Verbose_AddsTheStackTrace()
    {
        ToolRun run = ToolRun.Of("inspect", "/nonexistent/checkpoint", "--verbose");
        Assert.Equal(3, run.ExitCode);
        Assert.Contains("   at ", run.Stderr);
    }

    [Fact]
    public void Json_OnFailure_LeavesStdoutEmpty()
    {
        ToolRun run = ToolRun.Of("quantize", TinyStories, "--scheme", "nope", "--out", "/tmp/compress-never-written", "--json");
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public void Cancelled_ExitsWith130_AndWritesNoOutput()
    {
        using var folder = new TempFolder();
        string output = folder.Combine("out");
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        ToolRun run = ToolRun.Of(cancelled.Token, "quantize", TinyStories, "--scheme", "w4a16", "--out", output);
        Assert.Equal(130, run.ExitCode);
        Assert.Equal("compress: error: cancelled.", run.Stderr.Trim());
        Assert.False(File.Exists(Path.Combine(output, "model.safetensors")));
    }
}
