// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Quantization.Gguf;
using Compression.Testing;

namespace Compression.Quantization.Tests.Gguf;

/// <summary>The GGUF container: every value type, alignment, validation, and clean failures on damaged inputs.</summary>
public class GgufWriterTests
{
    private static GgufTestReader RoundTrip(GgufWriter writer)
    {
        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        return GgufTestReader.Read(stream.ToArray());
    }

    [Fact]
    public void EveryValueType_ReadsBackWithItsTagAndValue()
    {
        var writer = new GgufWriter();
        writer.SetMetadata("t.u8", GgufValue.UInt8(250));
        writer.SetMetadata("t.i8", GgufValue.Int8(-7));
        writer.SetMetadata("t.u16", GgufValue.UInt16(65000));
        writer.SetMetadata("t.i16", GgufValue.Int16(-30000));
        writer.SetMetadata("t.u32", GgufValue.UInt32(4_000_000_000));
        writer.SetMetadata("t.i32", GgufValue.Int32(-2_000_000_000));
        writer.SetMetadata("t.f32", GgufValue.Float32(1.5e-6f));
        writer.SetMetadata("t.bool", GgufValue.Bool(true));
        writer.SetMetadata("t.str", GgufValue.String("▁héllo"));
        writer.SetMetadata("t.u64", GgufValue.UInt64(ulong.MaxValue));
        writer.SetMetadata("t.i64", GgufValue.Int64(long.MinValue));
        writer.SetMetadata("t.f64", GgufValue.Float64(Math.PI));
        writer.SetMetadata("t.strings", GgufValue.Array(["a", "", "<0x0A>", "日本"]));
        writer.SetMetadata("t.floats", GgufValue.Array([-1000f, 0f]));
        writer.SetMetadata("t.ints", GgufValue.Array([1, -2, 3]));
        writer.SetMetadata("t.empty", GgufValue.Array(Array.Empty<long>()));
        GgufTestReader gguf = RoundTrip(writer);
        Assert.Equal(["t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.f32", "t.bool", "t.str", "t.u64", "t.i64", "t.f64", "t.strings", "t.floats", "t.ints", "t.empty"], gguf.KeyOrder);
        Assert.Equal((0u, (object)(byte)250), gguf.Metadata["t.u8"]);
        Assert.Equal((1u, (object)(sbyte)-7), gguf.Metadata["t.i8"]);
        Assert.Equal((2u, (object)(ushort)65000), gguf.Metadata["t.u16"]);
        Assert.Equal((3u, (object)(short)-30000), gguf.Metadata["t.i16"]);
        Assert.Equal((4u, (object)4_000_000_000u), gguf.Metadata["t.u32"]);
        Assert.Equal((5u, (object)-2_000_000_000), gguf.Metadata["t.i32"]);
        Assert.Equal((6u, (object)1.5e-6f), gguf.Metadata["t.f32"]);
        Assert.Equal((7u, (object)true), gguf.Metadata["t.bool"]);
        Assert.Equal((8u, (object)"▁héllo"), gguf.Metadata["t.str"]);
        Assert.Equal((10u, (object)ulong.MaxValue), gguf.Metadata["t.u64"]);
        Assert.Equal((11u, (object)long.MinValue), gguf.Metadata["t.i64"]);
        Assert.Equal((12u, (object)Math.PI), gguf.Metadata["t.f64"]);
        Assert.Equal(9u, gguf.Metadata["t.strings"].Type);
        Assert.Equal(new object[] { "a", "", "<0x0A>", "日本" }, gguf.Get<object[]>("t.strings"));
        Assert.Equal(new object[] { -1000f, 0f }, gguf.Get<object[]>("t.floats"));
        Assert.Equal(new object[] { 1, -2, 3 }, gguf.Get<object[]>("t.ints"));
        Assert.Empty(gguf.Get<object[]>("t.empty"));
        Assert.Empty(gguf.Tensors);
    }

    [Fact]
    public void Tensors_AreAlignedAndPaddedWithZeros()
    {
        var writer = new GgufWriter(alignment: 128);
        float[] a = RandomData.Gaussian(3, seed: 1), b = RandomData.Gaussian(2 * 32, seed: 2);
        writer.AddTensor("a", GgmlType.F32, [3], GgmlQuantization.Quantize(a, GgmlType.F32));
        writer.AddTensor("b", GgmlType.Q8_0, [2, 32], stream => stream.Write(GgmlQuantization.Quantize(b, GgmlType.Q8_0)));
        GgufTestReader gguf = RoundTrip(writer);
        Assert.Equal(128u, gguf.Get<uint>("general.alignment"));
        Assert.Equal(0, gguf.DataStart % 128);
        Assert.Equal(0UL, gguf.Tensor("a").Offset);
        Assert.Equal(128UL, gguf.Tensor("b").Offset);
        Assert.Equal([32UL, 2UL], gguf.Tensor("b").Ne);
        Assert.Equal(a, GgmlReference.Dequantize(gguf.Data(gguf.Tensor("a")), 0, 3));
        Assert.All(gguf.Bytes[(int)(gguf.DataStart + 12)..(int)(gguf.DataStart + 128)], x => Assert.Equal(0, x));
        Assert.Equal(gguf.DataStart + 256, gguf.Bytes.Length);
    }

    [Fact]
    public void InvalidArguments_NameTheParameter()
    {
        Assert.Equal("alignment", Assert.Throws<ArgumentOutOfRangeException>(() => new GgufWriter(48)).ParamName);
        Assert.Equal("alignment", Assert.Throws<ArgumentOutOfRangeException>(() => new GgufWriter(4)).ParamName);
        var writer = new GgufWriter();
        writer.SetMetadata("k", GgufValue.Bool(false));
        Assert.Equal("key", Assert.Throws<ArgumentException>(() => writer.SetMetadata("k", GgufValue.Bool(true))).ParamName);
        Assert.Equal("value", Assert.Throws<ArgumentException>(() => writer.SetMetadata("general.alignment", GgufValue.UInt32(64))).ParamName);
        Assert.Equal("values", Assert.Throws<ArgumentException>(() => GgufValue.Array(new string[] { "a", null! })).ParamName);
        byte[] q = new byte[34];
        Assert.Equal("shape", Assert.Throws<ArgumentException>(() => writer.AddTensor("x", GgmlType.Q8_0, [1, 33], q)).ParamName);
        Assert.Equal("shape", Assert.Throws<ArgumentException>(() => writer.AddTensor("x", GgmlType.Q8_0, [0, 32], q)).ParamName);
        Assert.Equal("shape", Assert.Throws<ArgumentException>(() => writer.AddTensor("x", GgmlType.F32, [1, 1, 1, 1, 1], new byte[4])).ParamName);
        Assert.Equal("data", Assert.Throws<ArgumentException>(() => writer.AddTensor("x", GgmlType.Q8_0, [2, 32], q)).ParamName);
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => writer.AddTensor(new string('n', 64), GgmlType.Q8_0, [32], q)).ParamName);
        Assert.Equal("type", Assert.Throws<ArgumentException>(() => writer.AddTensor("y", (GgmlType)99, [32], q)).ParamName);
        writer.AddTensor("x", GgmlType.Q8_0, [1, 32], q);
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => writer.AddTensor("x", GgmlType.Q8_0, [1, 32], q)).ParamName);
        Assert.Equal("values", Assert.Throws<ArgumentException>(() => GgmlQuantization.Quantize(new float[31], GgmlType.Q4_0)).ParamName);
        float[] nan = new float[32];
        nan[7] = float.NaN;
        Assert.Equal("values", Assert.Throws<ArgumentException>(() => GgmlQuantization.Quantize(nan, GgmlType.Q8_0)).ParamName);
    }

    [Fact]
    public void DeferredTensor_WithTheWrongByteCount_FailsAndSaveLeavesNoFile()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new GgufWriter();
        writer.AddTensor("x", GgmlType.F16, [8], stream => stream.Write(new byte[15]));
        Assert.Throws<InvalidDataException>(() => writer.Save(folder.File("x.gguf")));
        Assert.Empty(Directory.GetFiles(folder.Path));
    }

    [Fact]
    public void TestReader_RejectsEveryTruncationOfAWrittenFile()
    {
        // The reader is strict about lengths, so the exporter tests reading a file prove its header is self-consistent.
        var writer = new GgufWriter();
        writer.SetMetadata("tokenizer.ggml.tokens", GgufValue.Array(["a", "bc"]));
        writer.AddTensor("w", GgmlType.Q4_0, [2, 32], GgmlQuantization.Quantize(RandomData.Gaussian(64, seed: 3), GgmlType.Q4_0));
        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        byte[] bytes = stream.ToArray();
        GgufTestReader.Read(bytes);
        for (int length = 0; length < bytes.Length - 32; length++)
        {
            Assert.Throws<InvalidDataException>(() => GgufTestReader.Read(bytes[..length]));
        }
    }
}
