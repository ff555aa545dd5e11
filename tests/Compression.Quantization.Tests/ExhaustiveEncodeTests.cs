using Compression.Quantization.Formats;

namespace Compression.Quantization.Tests;

/// <summary>
/// Every one of the 2^32 float32 bit patterns through the FP8 E4M3, FP8 E5M2 and FP4 E2M1 encoders, against the
/// independent reference. About a minute on two cores, so it stays in the default run; the category lets a quick
/// local loop skip it: <c>--filter Category!=Exhaustive</c>.
/// </summary>
[Trait("Category", "Exhaustive")]
public class ExhaustiveEncodeTests
{
    [Theory]
    [InlineData("fp8-e4m3")]
    [InlineData("fp8-e5m2")]
    [InlineData("fp4-e2m1")]
    public void Encode_AllFloat32BitPatterns_MatchTheReference(string name)
    {
        MiniFloatCodec codec = MiniFloatCodecTests.Codec(name);
        MiniFloatReference reference = MiniFloatCodecTests.Reference(codec);
        long mismatches = 0;
        uint firstMismatch = 0;
        // Positive patterns only, each checked with its negative twin: the sign is one bit in both.
        Parallel.For(0, 1 << 15, chunk =>
        {
            uint start = (uint)chunk << 16;
            for (uint low = 0; low < 1u << 16; low++)
            {
                uint bits = start | low;
                float x = BitConverter.UInt32BitsToSingle(bits);
                if (float.IsNaN(x))
                {
                    continue;
                }

                int expected = reference.Encode(x);
                if (codec.Encode(x) != expected || codec.Encode(-x) != (expected | reference.SignBit))
                {
                    if (Interlocked.Increment(ref mismatches) == 1)
                    {
                        firstMismatch = bits;
                    }
                }
            }
        });

        Assert.True(mismatches == 0, $"{name}: {mismatches} mismatches, first at 0x{firstMismatch:X8}");
    }

    [Theory]
    [InlineData("fp8-e4m3")]
    [InlineData("fp8-e5m2")]
    [InlineData("fp6-e2m3")]
    [InlineData("fp6-e3m2")]
    [InlineData("fp4-e2m1")]
    public void SpanKernel_AllFloat32BitPatterns_EqualTheScalarCodec(string name)
    {
        // The SIMD encoder uses different arithmetic from the scalar codec (integer rounding on the bits, an FPU
        // addition for subnormals); every pattern, NaNs included, must give the same code.
        MiniFloatCodec codec = MiniFloatCodecTests.Codec(name);
        long mismatches = 0;
        uint firstMismatch = 0;
        Parallel.For(0, 1 << 16, () => (new float[1 << 16], new byte[1 << 16]), (chunk, _, buffers) =>
        {
            (float[] x, byte[] codes) = buffers;
            uint start = (uint)chunk << 16;
            for (int low = 0; low < x.Length; low++)
            {
                x[low] = BitConverter.UInt32BitsToSingle(start | (uint)low);
            }

            Primitives.MiniFloatPrimitives.Quantize(codec, x, 1f, saturate: true, codes);
            for (int low = 0; low < x.Length; low++)
            {
                if (codes[low] != codec.Encode(x[low]) && Interlocked.Increment(ref mismatches) == 1)
                {
                    firstMismatch = start | (uint)low;
                }
            }

            return buffers;
        }, _ => { });

        Assert.True(mismatches == 0, $"{name}: {mismatches} mismatches, first at 0x{firstMismatch:X8}");
    }
}
