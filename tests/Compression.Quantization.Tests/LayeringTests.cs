using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>The family stays TorchSharp-free so a checkpoint-only user never loads libtorch (docs/architecture.md).</summary>
public class LayeringTests
{
    [Fact]
    public void Quantization_ReferencesCoreOnly()
    {
        var assembly = System.Reflection.Assembly.Load("Compression.Quantization");
        DependencyRules.AssertDoesNotReference(assembly, "TorchSharp", "ILGPU", "MathNet", "Compression.Pruning", "Compression.LowRank", "Compression.Distillation", "Compression.Gpu");
    }
}
