using Compression.Testing;

namespace Compression.LowRank.Tests;

/// <summary>The family references Core and MathNet only (docs/architecture.md).</summary>
public class LayeringTests
{
    [Fact]
    public void LowRank_ReferencesCoreAndMathNetOnly()
    {
        var assembly = System.Reflection.Assembly.Load("Compression.LowRank");
        DependencyRules.AssertDoesNotReference(assembly, "TorchSharp", "ILGPU", "Compression.Quantization", "Compression.Pruning", "Compression.Distillation", "Compression.Gpu");
    }
}
