using Compression.Testing;

namespace Compression.Distillation.Tests;

/// <summary>The family stays TorchSharp-free; the TorchSharp training loop lives in Compression.TorchSharp.</summary>
public class LayeringTests
{
    [Fact]
    public void Distillation_ReferencesCoreOnly()
    {
        var assembly = System.Reflection.Assembly.Load("Compression.Distillation");
        DependencyRules.AssertDoesNotReference(assembly, "TorchSharp", "ILGPU", "MathNet", "Compression.Quantization", "Compression.LowRank", "Compression.Pruning", "Compression.Gpu");
    }
}
