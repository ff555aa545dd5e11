// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Reflection;
using Compression.Reliability.Worker;

// Dispatches to the [WorkerCommand] class named by the first argument. Exit codes: what the command returns;
// 64 for an unknown command. An exception escapes (exit code 134 or similar) so the parent sees a crash as a crash.
Dictionary<string, MethodInfo> commands = typeof(WorkerCommandAttribute).Assembly.GetTypes()
    .Select(t => (Type: t, Attribute: t.GetCustomAttribute<WorkerCommandAttribute>()))
    .Where(x => x.Attribute is not null)
    .ToDictionary(x => x.Attribute!.Name, x => x.Type.GetMethod("Run", BindingFlags.Public | BindingFlags.Static, [typeof(string[])])
        ?? throw new InvalidOperationException($"{x.Type.Name} has no public static int Run(string[])."), StringComparer.Ordinal);

if (args.Length == 0 || !commands.TryGetValue(args[0], out MethodInfo? run))
{
    Console.Error.WriteLine($"usage: Compression.Reliability.Worker <{string.Join("|", commands.Keys.Order(StringComparer.Ordinal))}> args…");
    return 64;
}

return (int)run.Invoke(null, [args[1..]])!;
