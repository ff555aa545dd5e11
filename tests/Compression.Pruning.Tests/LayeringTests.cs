using Compression.Testing;

namespace Compression.Pruning.Tests;

/// <summary>The family stays TorchSharp-free so a checkpoint-only user never loads libtorch (docs/architecture.md).</summary>
public class LayeringTests
{
    [Fact]
    public void Pruning_ReferencesCoreOnly()
    {
        var assembly = System.Reflection.Assembly.Load("Compression.Pruning");
        DependencyRules.AssertDoesNotReference(assembly, "TorchSharp", "ILGPU", "MathNet", "Compression.Quantization", "Compression.LowRank", "Compression.Distillation", "Compression.Gpu");
    }
}
