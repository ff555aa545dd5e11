using Compression.Gpu.Runtime;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Gpu.Tests;

/// <summary>Kernels run on ILGPU's CPU simulator here (CI has no GPU); they must equal the CPU path bit for bit.</summary>
[Collection("Gpu")]
public class GpuConversionsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(1000)]
    public void BFloat16ToSingle_OnTheSimulator_EqualsTheCpuPath(int length)
    {
        var random = new Random(length + 1);
        var source = new BFloat16[length];
        for (int i = 0; i < length; i++)
        {
            source[i] = BFloat16.FromRawValue((ushort)random.Next(65536));
        }

        var expected = new float[length];
        NumericConversions.ConvertToSingle(source, expected);
        var actual = Enumerable.Repeat(float.NaN, length).ToArray();             // poisoned: every element must be written

        using GpuContext gpu = GpuContext.CreateCpuSimulator();
        Assert.Equal(GpuDeviceKind.CpuSimulator, gpu.Kind);
        GpuConversions.ConvertToSingle(gpu, source, actual);
        GpuConversions.ConvertToSingle(gpu, source, actual);                      // second call reuses the cached kernel

        Assert.Equal(expected.Select(BitConverter.SingleToUInt32Bits), actual.Select(BitConverter.SingleToUInt32Bits));
    }

    [Fact]
    public void ShortDestination_IsRejected()
    {
        using GpuContext gpu = GpuContext.CreateCpuSimulator();
        Assert.Throws<ArgumentException>("destination", () => GpuConversions.ConvertToSingle(gpu, new BFloat16[4], new float[3]));
    }

    [Fact]
    public void TryCreateBest_NeverPicksTheSimulator_AndExplainsItself()
    {
        bool found = GpuContext.TryCreateBest(out GpuContext? gpu, out string reason);
        Assert.False(string.IsNullOrWhiteSpace(reason));
        if (found)
        {
            using (gpu)
            {
                Assert.NotEqual(GpuDeviceKind.CpuSimulator, gpu!.Kind);
            }
        }
        else
        {
            Assert.Null(gpu);
            Assert.Throws<NotSupportedException>(() => GpuContext.CreateBest());
        }
    }

    [Fact]
    public void Gpu_DoesNotReferenceTheFamiliesOrTorchSharp() =>
        DependencyRules.AssertDoesNotReference(typeof(GpuContext).Assembly, "TorchSharp", "Compression.Quantization", "Compression.Pruning", "Compression.LowRank", "Compression.Distillation");
}
