using Compression.Quantization.Formats;
using Compression.Tensors;

namespace Compression.Quantization.Tests;

/// <summary>The worked examples of docs/formats.md, so the documentation cannot drift from the code.</summary>
public class DocumentedExamplesTests
{
    [Fact]
    public void Int4Example()
    {
        QuantizedTensor q = new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerChannel }.CreateCompressor()
            .Quantize(DenseTensor.FromValues([0.7f, -0.35f, 0.1f], 1, 3));
        Assert.Equal([15, 4, 9], q.UnpackCodes());
        Assert.Equal([0x4F, 0x09], q.PackedCodes.ToArray());
        Assert.Equal([0.7f, -0.4f, 0.1f], q.Decompress().Span.ToArray());
    }

    [Fact]
    public void Fp8E4M3Examples()
    {
        Assert.Equal(0x2A, MiniFloatCodec.Fp8E4M3.Encode(0.3f));
        Assert.Equal(0.3125f, MiniFloatCodec.Fp8E4M3.Decode(0x2A));
        Assert.Equal(0x7E, MiniFloatCodec.Fp8E4M3.Encode(464f));
    }

    [Fact]
    public void Mxfp4Example()
    {
        Assert.Equal(0b0110, MiniFloatCodec.Fp4E2M1.Encode(5f));
        Assert.Equal(0b1001, MiniFloatCodec.Fp4E2M1.Encode(-0.3f));
        Assert.Equal(127, E8M0.Encode(MathF.ScaleB(1f, E8M0.SharedExponent(5f, MiniFloatCodec.Fp4E2M1.MaxExponent))));
    }

    [Fact]
    public void TernaryExample()
    {
        QuantizedTensor q = new RtnOptions { Format = NumberFormat.TernaryAbsMean }.CreateCompressor()
            .Quantize(DenseTensor.FromValues([0.1f, -0.9f, 0.5f, -0.05f, 0f, 2.0f], 1, 6));
        Assert.Equal([1, 0, 2, 1, 1, 2], q.UnpackCodes());
        Assert.Equal([127, 2], q.PackedCodes.ToArray());
    }
}

public class E8M0Tests
{
    [Fact]
    public void SharedExponent_IsFloorLog2MinusEmax_ClampedToTheE8M0Range()
    {
        var random = new Random(11);
        float[] values = [1f, 2f, 0.5f, MathF.BitDecrement(2f), MathF.BitIncrement(1f), float.MaxValue, float.Epsilon, 1e-39f,
            MathF.ScaleB(1f, -126), MathF.BitDecrement(MathF.ScaleB(1f, -126)), 448f, 6f];
        foreach (float v in values.Concat(Enumerable.Range(0, 10_000).Select(_ => BitConverter.Int32BitsToSingle(random.Next(1, 0x7F80_0000)))))
        {
            foreach (int emax in new[] { 0, 2, 4, 8, 15 })
            {
                int expected = Math.Clamp((int)Math.Floor(Math.Log2(v)) - emax, -127, 127);
                Assert.True(expected == E8M0.SharedExponent(v, emax), $"{v:R} emax {emax}: {E8M0.SharedExponent(v, emax)} vs {expected}");
                Assert.Equal(Math.Pow(2, expected), (double)E8M0.PowerOfTwo(expected));
            }
        }

        Assert.Equal(-127, E8M0.SharedExponent(0f, 2));
    }
}
