using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>Quantizing into reusable storage gives the fresh path's result bit for bit, and refuses storage made for something else.</summary>
public class QuantizedTensorStorageTests
{
    public static TheoryData<string> Schemes() => new()
    {
        "int8/per-channel", "int4/group-128", "int4/group-128/asym", "fp8-e4m3/per-channel", "mxfp4", "mxfp8-e4m3", "nvfp4", "nf4",
        "int8/per-tensor", "fp8-e4m3/block-4x64", "ternary-absmean/per-channel",
    };

    private static RtnOptions Parse(string scheme)
    {
        string[] parts = scheme.Split('/');
        return new RtnOptions
        {
            Format = NumberFormat.FromName(parts[0]),
            Granularity = parts.Length > 1 ? GranularityNames.Parse(parts[1]) : null,
            Symmetric = !scheme.EndsWith("/asym", StringComparison.Ordinal),
        };
    }

    private static void AssertSame(QuantizedTensor expected, QuantizedTensor actual)
    {
        Assert.Equal(expected.PackedCodes.ToArray(), actual.PackedCodes.ToArray());
        Assert.Equal(expected.Scales.ToArray().Select(BitConverter.SingleToInt32Bits), actual.Scales.ToArray().Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(expected.ZeroPoints.ToArray(), actual.ZeroPoints.ToArray());
        Assert.Equal(BitConverter.SingleToInt32Bits(expected.GlobalScale), BitConverter.SingleToInt32Bits(actual.GlobalScale));
        Assert.True(expected.Decompress().BitwiseEquals(actual.Decompress()));
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void StorageResults_EqualFreshResults_AcrossReuse(string scheme)
    {
        RtnOptions options = Parse(scheme);
        var quantizer = new RoundToNearestQuantizer(options);
        var storage = QuantizedTensorStorage.Create(options, 6, 256);
        foreach (int seed in new[] { 1, 2 })
        {
            DenseTensor w = RandomData.GaussianMatrix(6, 256, seed);
            w.Row(seed).Clear();
            QuantizedTensor reused = quantizer.Quantize(w, storage);
            AssertSame(quantizer.Quantize(w), reused);
        }
    }

    [Fact]
    public void Storage_ForOtherOptionsOrShape_IsRefused()
    {
        var quantizer = new RoundToNearestQuantizer(RtnOptions.W4Group128);
        DenseTensor w = RandomData.GaussianMatrix(4, 256, seed: 3);
        Assert.Throws<ArgumentException>("storage", () => quantizer.Quantize(w, QuantizedTensorStorage.Create(RtnOptions.W8PerChannel, 4, 256)));
        Assert.Throws<ArgumentException>("storage", () => quantizer.Quantize(w, QuantizedTensorStorage.Create(RtnOptions.W4Group128, 5, 256)));
        Assert.Throws<ArgumentException>("Granularity", () => QuantizedTensorStorage.Create(RtnOptions.W4Group128, 4, 100));
        w[2, 7] = float.NaN;
        Assert.Throws<ArgumentException>("weight", () => quantizer.Quantize(w, QuantizedTensorStorage.Create(RtnOptions.W4Group128, 4, 256)));
    }
}
