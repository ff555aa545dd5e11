using Compression.Tensors;
using FsCheck;
using FsCheck.Xunit;

namespace Compression.Core.Tests;

public class NumericConversionTests
{
    [Fact]
    public void BFloat16_EveryBitPattern_WidensAndNarrowsBackExactly()
    {
        // Exhaustive: all 65,536 patterns. A non-NaN value is representable, so the round trip must give the same
        // bits; a NaN must stay a NaN of the same sign (quiet).
        var source = new BFloat16[65536];
        for (int i = 0; i < source.Length; i++)
        {
            source[i] = BFloat16.FromRawValue((ushort)i);
        }

        var widened = new float[source.Length];
        NumericConversions.ConvertToSingle(source, widened);
        var narrowed = new BFloat16[source.Length];
        NumericConversions.ConvertToBFloat16(widened, narrowed);
        for (int i = 0; i < source.Length; i++)
        {
            Assert.Equal((uint)i << 16, BitConverter.SingleToUInt32Bits(widened[i]));
            if (source[i].IsNaN)
            {
                Assert.True(narrowed[i].IsNaN);
                Assert.Equal(i & 0x8000, narrowed[i].RawValue & 0x8000);
            }
            else
            {
                Assert.Equal(source[i].RawValue, narrowed[i].RawValue);
            }
        }
    }

    [Fact]
    public void Half_EveryBitPattern_WidensAndNarrowsBackExactly()
    {
        var source = new Half[65536];
        for (int i = 0; i < source.Length; i++)
        {
            source[i] = BitConverter.UInt16BitsToHalf((ushort)i);
        }

        var widened = new float[source.Length];
        NumericConversions.ConvertToSingle(source, widened);
        var narrowed = new Half[source.Length];
        NumericConversions.ConvertToHalf(widened, narrowed);
        for (int i = 0; i < source.Length; i++)
        {
            Assert.Equal((float)source[i], widened[i]);
            if (Half.IsNaN(source[i]))
            {
                Assert.True(Half.IsNaN(narrowed[i]));
            }
            else
            {
                Assert.Equal((ushort)i, BitConverter.HalfToUInt16Bits(narrowed[i]));
            }
        }
    }

    [Property(MaxTest = 2000)]
    public bool SingleToBFloat16_IsNearest_TiesToEven(int bits)
    {
        float x = BitConverter.Int32BitsToSingle(bits);
        BFloat16 actual = (BFloat16)x;
        if (float.IsNaN(x))
        {
            return actual.IsNaN;
        }

        return actual.RawValue == ReferenceRoundToBFloat16(x);
    }

    [Property(MaxTest = 300)]
    public bool VectorAndScalarPaths_GiveTheSameBits(int seed, byte length)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < length; i++)
        {
            values[i] = BitConverter.Int32BitsToSingle(random.Next(int.MinValue, int.MaxValue));
        }

        var span = new BFloat16[length];
        NumericConversions.ConvertToBFloat16(values, span);
        for (int i = 0; i < length; i++)
        {
            if (span[i].RawValue != NumericConversions.SingleToBFloat16Bits(values[i]))
            {
                return false;
            }
        }

        var back = new float[length];
        NumericConversions.ConvertToSingle(span, back);
        return back.Select((v, i) => BitConverter.SingleToUInt32Bits(v) == (uint)span[i].RawValue << 16).All(b => b);
    }

    [Theory]
    [InlineData(0x00, 0f)]
    [InlineData(0x01, 1f / 512)]            // smallest subnormal 2^-9
    [InlineData(0x07, 7f / 512)]            // largest subnormal
    [InlineData(0x08, 1f / 64)]             // smallest normal 2^-6
    [InlineData(0x38, 1f)]
    [InlineData(0x3C, 1.5f)]
    [InlineData(0x7E, 448f)]                // max normal S.1111.110
    [InlineData(0xFE, -448f)]
    [InlineData(0x80, -0f)]
    public void Float8E4M3_DecodesSpecValues(byte code, float expected) =>
        Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(NumericConversions.DecodeFloat8E4M3(code)));

    [Fact]
    public void Float8E4M3_HasOnlyTheTwoNaNCodes_AndNoInfinity()
    {
        int nanCount = Enumerable.Range(0, 256).Count(c => float.IsNaN(NumericConversions.DecodeFloat8E4M3((byte)c)));
        Assert.Equal(2, nanCount);
        Assert.True(float.IsNaN(NumericConversions.DecodeFloat8E4M3(0x7F)));
        Assert.True(float.IsNaN(NumericConversions.DecodeFloat8E4M3(0xFF)));
        Assert.DoesNotContain(Enumerable.Range(0, 256), c => float.IsInfinity(NumericConversions.DecodeFloat8E4M3((byte)c)));
    }

    [Theory]
    [InlineData(0x01, 1f / 65536)]          // smallest subnormal 2^-16
    [InlineData(0x04, 1f / 16384)]          // smallest normal 2^-14
    [InlineData(0x3C, 1f)]
    [InlineData(0x7B, 57344f)]              // max normal
    [InlineData(0x7C, float.PositiveInfinity)]
    [InlineData(0xFC, float.NegativeInfinity)]
    public void Float8E5M2_DecodesSpecValues(byte code, float expected) =>
        Assert.Equal(expected, NumericConversions.DecodeFloat8E5M2(code));

    [Fact]
    public void Float8E5M2_NaNCodes_AreTheSixWithMaxExponentAndNonZeroMantissa()
    {
        int[] nans = Enumerable.Range(0, 256).Where(c => float.IsNaN(NumericConversions.DecodeFloat8E5M2((byte)c))).ToArray();
        Assert.Equal([0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF], nans);
    }

    [Fact]
    public void Float8Spans_MatchScalarDecode()
    {
        byte[] codes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var e4m3 = new float[256];
        var e5m2 = new float[256];
        NumericConversions.ConvertFloat8E4M3ToSingle(codes, e4m3);
        NumericConversions.ConvertFloat8E5M2ToSingle(codes, e5m2);
        for (int i = 0; i < 256; i++)
        {
            Assert.Equal(BitConverter.SingleToUInt32Bits(NumericConversions.DecodeFloat8E4M3((byte)i)), BitConverter.SingleToUInt32Bits(e4m3[i]));
            Assert.Equal(BitConverter.SingleToUInt32Bits(NumericConversions.DecodeFloat8E5M2((byte)i)), BitConverter.SingleToUInt32Bits(e5m2[i]));
        }
    }

    [Fact]
    public void Conversions_ThrowForShortDestinations()
    {
        Assert.Throws<ArgumentException>("destination", () => NumericConversions.ConvertToSingle(new BFloat16[3], new float[2]));
        Assert.Throws<ArgumentException>("destination", () => NumericConversions.ConvertToBFloat16(new float[3], new BFloat16[2]));
        Assert.Throws<ArgumentException>("destination", () => NumericConversions.ConvertFloat8E4M3ToSingle(new byte[3], new float[2]));
    }

    /// <summary>Nearest BF16 by comparing distances in float64 (exact for these values), ties to the even pattern.</summary>
    private static ushort ReferenceRoundToBFloat16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint down = bits & 0xFFFF_0000u;
        double lower = BitConverter.UInt32BitsToSingle(down);
        if (down == bits)
        {
            return (ushort)(down >> 16);
        }

        uint upBits = down + 0x1_0000u;
        // The next pattern up in magnitude; above the largest finite value it is infinity, which IEEE treats as the
        // neighbour 2^128 for rounding purposes.
        double upper = (upBits & 0x7FFF_FFFFu) == 0x7F80_0000u
            ? Math.CopySign(Math.Pow(2, 128), x)
            : BitConverter.UInt32BitsToSingle(upBits);
        double dLower = Math.Abs(x - lower), dUpper = Math.Abs(upper - x);
        if (dLower < dUpper)
        {
            return (ushort)(down >> 16);
        }

        if (dUpper < dLower)
        {
            return (ushort)(upBits >> 16);
        }

        return ((down >> 16) & 1) == 0 ? (ushort)(down >> 16) : (ushort)(upBits >> 16);
    }
}
