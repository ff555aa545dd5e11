using Compression.LowRank.Numerics;

namespace Compression.LowRank.Tests;

/// <summary>The parallel fill of long arrays draws exactly the sequential stream.</summary>
public sealed class GaussianSamplerTests
{
    [Theory]
    [InlineData(0, 100_001)]
    [InlineData(1, 65_536)]
    [InlineData(3, 200_000)]
    [InlineData(7, 9)]
    public void ArrayFill_EqualsTheSequentialStream_BitForBit(int before, int length)
    {
        var sequential = new GaussianSampler(42);
        var parallel = new GaussianSampler(42);
        for (int i = 0; i < before; i++)
        {
            Assert.Equal(sequential.Next(), parallel.Next());
        }

        var expected = new double[length];
        for (int i = 0; i < length; i++)
        {
            expected[i] = sequential.Next();
        }

        var actual = new double[length];
        parallel.Fill(actual);
        Assert.Equal(expected, actual);
        // And the streams continue in step (the spare and the counter were left as the sequential draws leave them).
        Assert.Equal(sequential.Next(), parallel.Next());
        Assert.Equal(sequential.Next(), parallel.Next());
    }
}
