// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Quantization.Gguf;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests.Gguf;

/// <summary>FsCheck properties of ggml's block formats over random blocks of every scale, with ties, repeats, zeros
/// and sign flips mixed in.</summary>
public class GgmlQuantizationProperties
{
    private static readonly GgmlType[] BlockTypes = [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0];

    /// <summary>Blocks of random data at 10^−6 … 10^4, some entries replaced by zeros, copies, negated copies of the
    /// block's largest value, or exact half-steps (the rounding ties).</summary>
    private static float[] Blocks(int seed, int blocksChoice, int magnitudeChoice)
    {
        int blocks = blocksChoice % 4 + 1;
        float magnitude = MathF.Pow(10, magnitudeChoice % 11 - 6);
        float[] x = RandomData.Gaussian(blocks * 32, seed, magnitude);
        var random = new Random(seed);
        for (int b = 0; b < blocks; b++)
        {
            Span<float> block = x.AsSpan(b * 32, 32);
            float max = block[0];
            foreach (float v in block)
            {
                max = MathF.Abs(v) > MathF.Abs(max) ? v : max;
            }

            for (int k = 0; k < 6; k++)
            {
                int j = random.Next(32);
                block[j] = random.Next(5) switch
                {
                    0 => 0f,
                    1 => max,
                    2 => -max,
                    3 => max / 127f * (random.Next(-120, 120) + 0.5f),     // a Q8_0 tie
                    _ => max / 8f * (random.Next(-7, 7) + 0.5f),          // a Q4_0 tie
                };
            }

            if (random.Next(8) == 0)
            {
                block.Clear();                                            // an all-zero block
            }
        }

        return x;
    }

    [Property(MaxTest = 300)]
    public bool Q8_0_AndQ4_0_EqualTheIndependentReference(int seed, PositiveInt blocks, PositiveInt magnitude)
    {
        float[] x = Blocks(seed, blocks.Get, magnitude.Get);
        return GgmlQuantization.Quantize(x, GgmlType.Q8_0).AsSpan().SequenceEqual(GgmlReference.QuantizeQ8_0(x))
            && GgmlQuantization.Quantize(x, GgmlType.Q4_0).AsSpan().SequenceEqual(GgmlReference.QuantizeQ4_0(x))
            && GgmlQuantization.Dequantize(GgmlReference.QuantizeQ4_0(x), GgmlType.Q4_0, x.Length).AsSpan()
                .SequenceEqual(GgmlReference.Dequantize(GgmlReference.QuantizeQ4_0(x), 2, x.Length));
    }

    [Property(MaxTest = 300)]
    public void Error_IsWithinTheBlockBound(int seed, PositiveInt blocks, PositiveInt magnitude, PositiveInt typeChoice)
    {
        GgmlType type = BlockTypes[typeChoice.Get % BlockTypes.Length];
        float[] x = Blocks(seed, blocks.Get, magnitude.Get);
        byte[] q = GgmlQuantization.Quantize(x, type);
        float[] y = GgmlQuantization.Dequantize(q, type, x.Length);
        int blockBytes = GgmlQuantization.BlockBytes(type);
        for (int b = 0; b < x.Length / 32; b++)
        {
            ReadOnlySpan<float> block = x.AsSpan(b * 32, 32);
            float amax = 0, min = float.MaxValue, max = -float.MaxValue;
            foreach (float v in block)
            {
                amax = MathF.Max(amax, MathF.Abs(v));
                min = MathF.Min(min, v);
                max = MathF.Max(max, v);
            }

            // The exact step (before float16 rounding) and the float16 one the decoder uses. Codes are chosen with the
            // exact step and decoded with the rounded one: the error adds |code|·|d16 − d| to the rounding error.
            (double step, int largestCode, double roundingSteps) = type switch
            {
                GgmlType.Q8_0 => (amax / 127.0, 127, 0.5),
                GgmlType.Q4_0 => (amax / 8.0, 8, 1.0),                 // the value opposite the extreme may clamp at code 15 (7·d)
                GgmlType.Q5_0 => (amax / 16.0, 16, 1.0),
                _ => ((max - (double)min) / 15.0, 15, 0.5),
            };
            double d16 = Math.Abs((double)GgmlReference.FromHalfBits((ushort)(q[b * blockBytes] | q[b * blockBytes + 1] << 8)));
            double offsetError = type == GgmlType.Q4_1
                ? Math.Abs(GgmlReference.FromHalfBits((ushort)(q[b * blockBytes + 2] | q[b * blockBytes + 3] << 8)) - (double)min)
                : 0;

            // Float32 arithmetic in the quantizer (x·id, + 8.5) and decoder (code·d) adds a few ulps of amax.
            double bound = roundingSteps * step + largestCode * Math.Abs(d16 - step) + offsetError + 8 * amax * Math.Pow(2, -23) + 1e-30;
            for (int j = 0; j < 32; j++)
            {
                double error = Math.Abs((double)block[j] - y[b * 32 + j]);
                Assert.True(error <= bound, $"{type} block {b} element {j}: |{block[j]} − {y[b * 32 + j]}| = {error} > {bound}");
            }
        }
    }

    [Property(MaxTest = 300)]
    public bool Q8_0_AndQ4_0_AreIdempotentOnTheirOwnValues(int seed, PositiveInt blocks, PositiveInt magnitude)
    {
        // A decoded block is on its own grid with the same float16 scale (the extreme code maps back onto it), so
        // quantizing it again gives the same bytes.
        float[] x = Blocks(seed, blocks.Get, magnitude.Get);
        foreach (GgmlType type in new[] { GgmlType.Q8_0, GgmlType.Q4_0 })
        {
            byte[] q = GgmlQuantization.Quantize(x, type);
            float[] y = GgmlQuantization.Dequantize(q, type, x.Length);
            if (!GgmlQuantization.Quantize(y, type).AsSpan().SequenceEqual(q) && !AllScalesTiny(q, type))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A float16 scale that underflowed to a subnormal loses the exact ratio the argument needs; those
    /// blocks (amax below ~1e−3 for Q8_0) are excluded.</summary>
    private static bool AllScalesTiny(byte[] q, GgmlType type)
    {
        int blockBytes = GgmlQuantization.BlockBytes(type);
        for (int b = 0; b < q.Length; b += blockBytes)
        {
            if (((q[b + 1] >> 2) & 0x1F) != 0)
            {
                return false;
            }
        }

        return true;
    }

    [Fact]
    public void KnownBlocks_MatchHandComputedBytes()
    {
        // x = 0, 1, …, 31: Q8_0 d = 31/127, codes round(i·127/31); Q4_0 m = 31, d = −3.875, code of i = trunc(8.5 − i/3.875).
        float[] x = Enumerable.Range(0, 32).Select(i => (float)i).ToArray();
        byte[] q8 = GgmlQuantization.Quantize(x, GgmlType.Q8_0);
        Assert.Equal((ushort)BitConverter.HalfToUInt16Bits((Half)(31f / 127f)), BitConverter.ToUInt16(q8, 0));
        Assert.Equal(127, (sbyte)q8[2 + 31]);
        Assert.Equal(4, (sbyte)q8[2 + 1]);                                // 127/31 = 4.097 → 4
        byte[] q4 = GgmlQuantization.Quantize(x, GgmlType.Q4_0);
        Assert.Equal(BitConverter.HalfToUInt16Bits((Half)(-3.875f)), BitConverter.ToUInt16(q4, 0));
        Assert.Equal(8, q4[2] & 0xF);                                     // x0 = 0 → 8
        Assert.Equal(0, q4[2 + 15] >> 4);                                 // x31 = 31 → −8 + 8 = 0 (high nibble of byte 15)
        Assert.Equal(4, q4[2 + 0] >> 4);                                  // x16 = 16: 16/−3.875 + 8.5 = 4.37 → 4

        // An all-zero block: ggml's d is −0 (0/−8), bits 0x8000, and every code 8.
        byte[] zero = GgmlQuantization.Quantize(new float[32], GgmlType.Q4_0);
        Assert.Equal(0x8000, BitConverter.ToUInt16(zero, 0));
        Assert.All(zero[2..], b => Assert.Equal(0x88, b));
    }
}
