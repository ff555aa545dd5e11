using Compression.TorchSharp.Distillation;

namespace Compression.TorchSharp.Tests.Distillation;

/// <summary>Collects distillation progress synchronously (Progress&lt;T&gt; would post to the thread pool), and runs an
/// optional action on each report (a test cancels from there).</summary>
internal sealed class DistillationRecorder(Action<DistillationProgress>? onReport = null) : IProgress<DistillationProgress>
{
    public List<DistillationProgress> Seen { get; } = [];

    public void Report(DistillationProgress value)
    {
        Seen.Add(value);
        onReport?.Invoke(value);
    }
}
