// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Reflection;

namespace Compression.Testing;

/// <summary>Reads which assemblies an assembly references, to enforce the layering in docs/architecture.md.</summary>
public static class DependencyRules
{
    /// <summary>The names of the assemblies <paramref name="assembly"/> references directly.</summary>
    public static IReadOnlyList<string> ReferencedAssemblies(Assembly assembly) =>
        assembly.GetReferencedAssemblies().Select(a => a.Name ?? "").Order(StringComparer.Ordinal).ToList();

    /// <summary>Fails when <paramref name="assembly"/> references an assembly whose name starts with a forbidden prefix.</summary>
    public static void AssertDoesNotReference(Assembly assembly, params string[] forbiddenPrefixes)
    {
        string[] offending = ReferencedAssemblies(assembly)
            .Where(name => forbiddenPrefixes.Any(prefix => name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)))
            .ToArray();
        Xunit.Assert.True(offending.Length == 0,
            $"{assembly.GetName().Name} must not reference {string.Join(", ", forbiddenPrefixes)} but references {string.Join(", ", offending)}.");
    }
}
