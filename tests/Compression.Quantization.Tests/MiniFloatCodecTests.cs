using Compression.Quantization.Formats;
using Compression.Quantization.Primitives;
using Compression.Tensors;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests;

public class MiniFloatCodecTests
{
    public static TheoryData<string> Codecs() => new("fp8-e4m3", "fp8-e5m2", "fp6-e2m3", "fp6-e3m2", "fp4-e2m1");

    internal static MiniFloatCodec Codec(string name) => name switch
    {
        "fp8-e4m3" => MiniFloatCodec.Fp8E4M3,
        "fp8-e5m2" => MiniFloatCodec.Fp8E5M2,
        "fp6-e2m3" => MiniFloatCodec.Fp6E2M3,
        "fp6-e3m2" => MiniFloatCodec.Fp6E3M2,
        _ => MiniFloatCodec.Fp4E2M1,
    };

    internal static MiniFloatReference Reference(MiniFloatCodec c) => new(c.ExponentBits, c.MantissaBits, c.Bias, c.Specials);

    [Fact]
    public void Fp4E2M1_DecodesTheSpecTable()
    {
        float[] expected = [0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0f, -0.5f, -1, -1.5f, -2, -3, -4, -6];
        for (int code = 0; code < 16; code++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(expected[code]), BitConverter.SingleToInt32Bits(MiniFloatCodec.Fp4E2M1.Decode((byte)code)));
        }
    }

    [Fact]
    public void Fp8_DecodeAgreesWithCoreDecoders_ForAll256Codes()
    {
        // Bit-exact for every number; NaN codes must decode to NaN (a NaN's sign and payload carry no meaning).
        static void Same(float expected, float actual)
        {
            if (float.IsNaN(expected))
            {
                Assert.True(float.IsNaN(actual));
            }
            else
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(actual));
            }
        }

        for (int code = 0; code < 256; code++)
        {
            Same(NumericConversions.DecodeFloat8E4M3((byte)code), MiniFloatCodec.Fp8E4M3.Decode((byte)code));
            Same(NumericConversions.DecodeFloat8E5M2((byte)code), MiniFloatCodec.Fp8E5M2.Decode((byte)code));
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Decode_EveryFiniteCode_MatchesTheSpecFormula(string name)
    {
        MiniFloatCodec codec = Codec(name);
        MiniFloatReference reference = Reference(codec);
        var decoded = Enumerable.Range(0, 1 << codec.Bits).Select(c => codec.Decode((byte)c)).Where(float.IsFinite)
            .Where(v => !float.IsNegative(v)).Select(v => (double)v).Order().ToArray();
        Assert.Equal(reference.Values, decoded);
        Assert.Equal(reference.Max, codec.MaxNormal);
    }

    [Theory]
    [InlineData("fp8-e4m3", 448f, 8)]
    [InlineData("fp8-e5m2", 57344f, 15)]
    [InlineData("fp6-e2m3", 7.5f, 2)]
    [InlineData("fp6-e3m2", 28f, 4)]
    [InlineData("fp4-e2m1", 6f, 2)]
    public void MaxNormal_AndEmax_AreTheSpecValues(string name, float max, int emax)
    {
        Assert.Equal(max, Codec(name).MaxNormal);
        Assert.Equal(emax, Codec(name).MaxExponent);
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Encode_RandomBitPatterns_MatchesTheReference(string name)
    {
        MiniFloatCodec codec = Codec(name);
        MiniFloatReference reference = Reference(codec);
        var random = new Random(name.Length * 7919);
        for (int i = 0; i < 200_000; i++)
        {
            // Half the samples near the format's range, where every branch (subnormal, ties, saturation) lives.
            float x = i % 2 == 0
                ? BitConverter.Int32BitsToSingle(random.Next(int.MinValue, int.MaxValue))
                : (float)((random.NextDouble() * 2 - 1) * codec.MaxNormal * 1.2);
            if (float.IsNaN(x))
            {
                continue;
            }

            Assert.True(reference.Encode(x) == codec.Encode(x), $"{name}: x = {x:R} ({BitConverter.SingleToInt32Bits(x):X8}) → {codec.Encode(x):X2}, reference {reference.Encode(x):X2}");
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Encode_ExactlyAtMidpoints_TiesToEven(string name)
    {
        MiniFloatCodec codec = Codec(name);
        MiniFloatReference reference = Reference(codec);
        IReadOnlyList<double> values = reference.Values;
        for (int i = 1; i < values.Count; i++)
        {
            float midpoint = (float)((values[i - 1] + values[i]) / 2);
            Assert.Equal(reference.Encode(midpoint), codec.Encode(midpoint));
            Assert.Equal(0, codec.Encode(midpoint) & 1);                       // the even mantissa wins
            Assert.Equal(reference.Encode(-midpoint), codec.Encode(-midpoint));
        }
    }

    [Fact]
    public void Saturation_AndOverflow_FollowTheSpecs()
    {
        MiniFloatCodec e4m3 = MiniFloatCodec.Fp8E4M3, e5m2 = MiniFloatCodec.Fp8E5M2;
        Assert.Equal(0x7E, e4m3.Encode(1e6f));                                 // saturating: 448
        Assert.Equal(0xFE, e4m3.Encode(float.NegativeInfinity));
        Assert.Equal(0x7E, e4m3.Encode(464f, saturate: false));               // tie between 448 and 480: even
        Assert.Equal(0x7F, e4m3.Encode(465f, saturate: false));               // beyond: NaN (no infinity)
        Assert.Equal(0x7B, e5m2.Encode(61439f, saturate: false));
        Assert.Equal(0x7C, e5m2.Encode(61440f, saturate: false));             // rounds to 2^16: infinity
        Assert.Equal(0xFC, e5m2.Encode(float.NegativeInfinity, saturate: false));
        Assert.Equal(0x7B, e5m2.Encode(float.PositiveInfinity));
        Assert.Equal(0x7, MiniFloatCodec.Fp4E2M1.Encode(100f, saturate: false)); // no specials: saturates anyway
        Assert.True(float.IsNaN(e4m3.Decode(e4m3.Encode(float.NaN))));
        Assert.True(float.IsNaN(e5m2.Decode(e5m2.Encode(float.NaN))));
        Assert.Equal(0, MiniFloatCodec.Fp4E2M1.Encode(float.NaN));             // documented: +0 where no NaN exists
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void SpanKernel_EqualsTheScalarCodec_OnAllLengthsAndSpecials(string name)
    {
        MiniFloatCodec codec = Codec(name);
        var random = new Random(17);
        float[] specials = [0f, -0f, float.Epsilon, -float.Epsilon, float.MaxValue, float.MinValue, float.PositiveInfinity,
            float.NegativeInfinity, float.NaN, -float.NaN, codec.MaxNormal, -codec.MaxNormal, codec.MaxNormal * 1.999f];
        for (int length = 0; length <= 256; length++)
        {
            float[] x = Enumerable.Range(0, length).Select(i => i < specials.Length && length % 3 == 0
                ? specials[i]
                : (float)((random.NextDouble() * 2 - 1) * Math.Pow(2, random.Next(-20, 20)))).ToArray();
            float scale = length % 5 == 0 ? 1f : (float)random.NextDouble() + 0.01f;
            var codes = new byte[length];
            MiniFloatPrimitives.Quantize(codec, x, scale, saturate: true, codes);
            for (int i = 0; i < length; i++)
            {
                Assert.True(codec.Encode(x[i] / scale) == codes[i], $"{name} length {length} [{i}] x = {x[i]:R}: {codes[i]:X2} vs {codec.Encode(x[i] / scale):X2}");
            }
        }
    }

    [Property(MaxTest = 500)]
    public bool Encode_IsMonotone_AndSignSymmetric(NormalFloat a, NormalFloat b)
    {
        MiniFloatCodec codec = MiniFloatCodec.Fp8E4M3;
        float x = (float)a.Get % 500f, y = (float)b.Get % 500f;
        float qx = codec.Decode(codec.Encode(x)), qy = codec.Decode(codec.Encode(y));
        bool monotone = x <= y ? qx <= qy : qx >= qy;
        bool symmetric = codec.Decode(codec.Encode(-x)) == -qx;
        return monotone && symmetric;
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void RepresentableValues_RoundTripExactly_AndEncodeIsIdempotent(string name)
    {
        MiniFloatCodec codec = Codec(name);
        for (int code = 0; code < 1 << codec.Bits; code++)
        {
            float v = codec.Decode((byte)code);
            if (!float.IsFinite(v))
            {
                continue;
            }

            Assert.Equal(code, codec.Encode(v));                               // exact on the grid, −0 included
            byte once = codec.Encode(v * 1.01f + 1e-3f);
            Assert.Equal(once, codec.Encode(codec.Decode(once)));              // q(dq(q(x))) = q(x)
        }
    }
}
