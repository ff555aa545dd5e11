using Compression.Testing;

namespace Compression.LowRank.Tests;

/// <summary>The family references Core, MathNet and Compression.Gpu (with ILGPU: managed, no driver touched until a
/// GPU context is created) for the randomized SVD's device products, and no other family (docs/architecture.md).</summary>
public class LayeringTests
{
    [Fact]
    public void LowRank_ReferencesCoreMathNetAndGpuOnly()
    {
        var assembly = System.Reflection.Assembly.Load("Compression.LowRank");
        DependencyRules.AssertDoesNotReference(assembly, "TorchSharp", "Compression.Quantization", "Compression.Pruning", "Compression.Distillation");
        string[] allowed = ["System", "Microsoft", "netstandard", "Compression.Core", "Compression.Gpu", "ILGPU", "MathNet"];
        Assert.All(DependencyRules.ReferencedAssemblies(assembly),
            name => Assert.True(allowed.Any(prefix => name == prefix || name.StartsWith(prefix + ".", StringComparison.Ordinal)), $"unexpected reference {name}"));
    }
}
