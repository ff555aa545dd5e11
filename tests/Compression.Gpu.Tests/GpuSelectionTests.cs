using Compression.Gpu.Runtime;

namespace Compression.Gpu.Tests;

/// <summary>Resolving a <see cref="ComputeDevice"/> request; the compressors' routes are tested in their packages.</summary>
public sealed class GpuSelectionTests
{
    [Theory]
    [InlineData(null, ComputeDevice.Auto)]
    [InlineData("", ComputeDevice.Auto)]
    [InlineData("auto", ComputeDevice.Auto)]
    [InlineData(" CPU ", ComputeDevice.Cpu)]
    [InlineData("gpu", ComputeDevice.Gpu)]
    [InlineData("cuda", ComputeDevice.Gpu)]
    public void Environment_Parses(string? value, ComputeDevice expected) => Assert.Equal(expected, GpuSelection.FromEnvironment(value));

    [Fact]
    public void Environment_RefusesOtherValues_NamingTheVariable()
    {
        var e = Assert.Throws<InvalidOperationException>(() => GpuSelection.FromEnvironment("tpu"));
        Assert.Contains(GpuSelection.EnvironmentVariable, e.Message, StringComparison.Ordinal);
        Assert.Contains("tpu", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cpu_IsNeverAGpu_AndAutoWithoutReasonStaysOnTheCpu()
    {
        Assert.Null(GpuSelection.Select(ComputeDevice.Cpu, worthIt: true, "test"));
        if (Environment.GetEnvironmentVariable(GpuSelection.EnvironmentVariable) is null or "" or "auto")
        {
            Assert.Null(GpuSelection.Select(ComputeDevice.Auto, worthIt: false, "test"));
        }
    }

    [Fact]
    public void ForcedGpu_EitherOpensOne_OrExplainsWhyNot()
    {
        bool present = GpuSelection.TryGetShared(out GpuContext? shared, out string reason);
        if (present)
        {
            Assert.Same(shared, GpuSelection.Select(ComputeDevice.Gpu, worthIt: false, "test"));
            Assert.NotEqual(GpuDeviceKind.CpuSimulator, shared!.Kind);
            Assert.Same(shared, GpuSelection.Select(ComputeDevice.Auto, worthIt: true, "test"));
        }
        else
        {
            var e = Assert.Throws<NotSupportedException>(() => GpuSelection.Select(ComputeDevice.Gpu, worthIt: true, "my operation"));
            Assert.StartsWith("my operation: ", e.Message, StringComparison.Ordinal);
            Assert.Contains(reason, e.Message, StringComparison.Ordinal);
            Assert.Null(GpuSelection.Select(ComputeDevice.Auto, worthIt: true, "test"));
        }
    }
}
