using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>The family stays TorchSharp-free so a checkpoint-only user never loads libtorch (docs/architecture.md);
/// its GPU kernels use Compression.Gpu (managed ILGPU, no native code until a GPU is asked for).</summary>
public class LayeringTests
{
    [Fact]
    public void Quantization_ReferencesCoreOnly()
    {
        var assembly = System.Reflection.Assembly.Load("Compression.Quantization");
        DependencyRules.AssertDoesNotReference(assembly, "TorchSharp", "MathNet", "Compression.Pruning", "Compression.LowRank", "Compression.Distillation");
    }
}
