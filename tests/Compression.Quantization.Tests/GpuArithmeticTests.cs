using Compression.Quantization.Gpu;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests;

/// <summary>The scalar helpers the GPU kernels use instead of slow intrinsics, against .NET's own operations.</summary>
public class GpuArithmeticTests
{
    private static bool SameBits(float a, float b) => BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b) || (a == 0 && b == 0);

    [Property(MaxTest = 20000)]
    public bool RoundHalfEven_EqualsMathRound_WithinItsRange(int bits)
    {
        float y = BitConverter.Int32BitsToSingle(bits);
        return !(MathF.Abs(y) <= 4194304f) || SameBits(QuadKernels.RoundHalfEven(y), MathF.Round(y, MidpointRounding.ToEven));
    }

    [Fact]
    public void RoundHalfEven_EqualsMathRound_OnTiesAndTheirNeighbours()
    {
        for (int k = -300; k <= 300; k++)
        {
            float tie = k + 0.5f;
            foreach (float y in new[] { tie, MathF.BitIncrement(tie), MathF.BitDecrement(tie), k, 0.49999997f * Math.Sign(k) })
            {
                Assert.True(SameBits(QuadKernels.RoundHalfEven(y), MathF.Round(y, MidpointRounding.ToEven)), $"y = {y:R}");
            }
        }

        Assert.Equal(4194304f, QuadKernels.RoundHalfEven(4194304f));
        Assert.Equal(-4194304f, QuadKernels.RoundHalfEven(-4194303.5f));   // the tie goes to the even neighbour
        Assert.Equal(-4194302f, QuadKernels.RoundHalfEven(-4194302.5f));
    }
}
