using Compression.Testing;

namespace Compression.Core.Tests;

public class LayeringTests
{
    [Fact]
    public void Core_ReferencesNeitherTorchSharpNorIlgpuNorMathNet() =>
        DependencyRules.AssertDoesNotReference(typeof(ICompressor).Assembly, "TorchSharp", "ILGPU", "MathNet", "Compression.");
}
