// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Reliability.Tests;

public sealed class WorkerProcessTests
{
    [Fact]
    public void Worker_ProcessorCountVariable_ReachesTheChild()
    {
        (int code, string output, string error) = WorkerProcess.Run(["echo", "a", "b"],
            new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = "3" });
        Assert.True(code == 0, error);
        Assert.Equal("processors=3 args=a b", output.Trim());
    }

    [Fact]
    public void Worker_UnknownCommand_ExitsWithUsage()
    {
        (int code, _, string error) = WorkerProcess.Run(["no-such-command"]);
        Assert.Equal(64, code);
        Assert.Contains("usage:", error, StringComparison.Ordinal);
    }
}
