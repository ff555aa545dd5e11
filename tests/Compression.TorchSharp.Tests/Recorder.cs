namespace Compression.TorchSharp.Tests;

/// <summary>Collects progress reports synchronously (Progress&lt;T&gt; would post them to the thread pool).</summary>
internal sealed class Recorder(List<CompressionProgress> seen) : IProgress<CompressionProgress>
{
    public void Report(CompressionProgress value) => seen.Add(value);
}
