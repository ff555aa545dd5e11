using Compression.Quantization.Gpu;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests;

/// <summary>
/// The division-free quotient of the GPU kernels (one multiply and two fused multiply-adds from a precomputed
/// reciprocal) against IEEE division, bit for bit: random pairs over the whole float range, and the hard cases —
/// divisors with all-ones mantissas, quotients on and next to rounding ties, zeros of both signs, and operands where
/// the remainder would leave the normal range (those must fall back to dividing).
/// </summary>
public class QuotientTests
{
    private static bool SameAsDivision(float x, float s) =>
        BitConverter.SingleToInt32Bits(QuadKernels.Quotient(x, s, 1f / s)) == BitConverter.SingleToInt32Bits(x / s);

    [Property(MaxTest = 20000)]
    public bool Quotient_EqualsDivision_OnRandomBitPatterns(int xBits, int sBits)
    {
        float x = BitConverter.Int32BitsToSingle(xBits);
        float s = MathF.Abs(BitConverter.Int32BitsToSingle(sBits));
        return !float.IsFinite(x) || !float.IsFinite(s) || s == 0 || SameAsDivision(x, s);
    }

    [Fact]
    public void Quotient_EqualsDivision_OnHardCases()
    {
        var random = new Random(5);
        var divisors = new List<float> { 1f, 3f, 127f, 448f, 6f / 7f, float.Epsilon, 1e-38f, 1e-30f, 3e38f, 1e30f };
        for (int i = 0; i < 200; i++)
        {
            divisors.Add(BitConverter.Int32BitsToSingle((random.Next(1, 254) << 23) | 0x7F_FFFF));       // all-ones mantissa
            divisors.Add(BitConverter.Int32BitsToSingle((random.Next(60, 190) << 23) | random.Next(1 << 23)));
        }

        foreach (float s in divisors)
        {
            Assert.True(SameAsDivision(0f, s));
            Assert.True(SameAsDivision(-0f, s));
            for (int k = -300; k <= 300; k++)
            {
                // Quotients at and around the integer ties the integer formats round at, and around FP8/FP4 midpoints.
                float tie = (k + 0.5f) * s;
                foreach (float x in new[] { tie, MathF.BitIncrement(tie), MathF.BitDecrement(tie), k * 0.0625f * s, (k + 0.03125f) * s })
                {
                    Assert.True(!float.IsFinite(x) || SameAsDivision(x, s), $"x = {x:R}, s = {s:R}");
                }
            }

            foreach (float x in new[] { float.Epsilon, -float.Epsilon, 1e-45f * 3, 1e-40f, 1e-30f, 1e-20f, 1f, 1e20f, 3e38f, -3e38f })
            {
                Assert.True(SameAsDivision(x, s), $"x = {x:R}, s = {s:R}");
            }
        }
    }
}
