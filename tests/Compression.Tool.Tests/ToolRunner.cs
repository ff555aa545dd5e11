using System.Text.Json;

namespace Compression.Tool.Tests;

/// <summary>One in-process run of <c>compress</c>: exit code and both streams.</summary>
internal sealed record ToolRun(int ExitCode, string Stdout, string Stderr)
{
    public static ToolRun Of(params string[] args) => Of(CancellationToken.None, args);

    public static ToolRun Of(CancellationToken cancellationToken, params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = CompressApp.Run(args, stdout, stderr, cancellationToken);
        return new ToolRun(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>stdout as the single JSON object that --json promises (parsing fails on anything else).</summary>
    public JsonElement Json()
    {
        using JsonDocument document = JsonDocument.Parse(Stdout);
        Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
        return document.RootElement.Clone();
    }

    public ToolRun AssertSuccess()
    {
        Assert.True(ExitCode == 0, $"exit code {ExitCode}; stderr: {Stderr}");
        return this;
    }
}
