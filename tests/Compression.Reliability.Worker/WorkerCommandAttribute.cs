// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Reliability.Worker;

/// <summary>
/// Marks a static class as a worker command: <c>Compression.Reliability.Worker &lt;name&gt; args…</c> calls its
/// <c>public static int Run(string[] args)</c> with the remaining arguments and exits with what it returns.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class WorkerCommandAttribute(string name) : Attribute
{
    /// <summary>The first command-line argument that selects the command.</summary>
    public string Name { get; } = name;
}
