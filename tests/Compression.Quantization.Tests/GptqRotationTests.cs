using Compression.Calibration;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>MR-GPTQ: GPTQ in a block-wise Hadamard basis, held to GPTQ run by hand on the rotated weight and Hessian.</summary>
public class GptqRotationTests
{
    [Theory]
    [InlineData("mxfp4", 32, null)]
    [InlineData("nvfp4", 16, 5L)]
    [InlineData("int4-g32", 64, 9L)]
    public void RotatedGptq_EqualsGptqOnTheRotatedWeightAndHessian(string scheme, int block, long? seed)
    {
        RtnOptions rtn = scheme == "int4-g32" ? RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) } : new RtnOptions { Format = NumberFormat.FromName(scheme) };
        DenseTensor w = RandomData.GaussianMatrix(24, 128, seed: 3);
        HessianAccumulator accumulator = RandomData.CorrelatedHessian(128, 256, seed: 4);
        double[] h = accumulator.GetHessian();
        var parameters = new HadamardRotationParameters(block, seed);
        var rotation = new HadamardRotation(parameters);

        GptqTensor rotated = new GptqQuantizer(new GptqOptions { Quantization = rtn, ActOrder = true, Rotation = parameters })
            .Quantize(w, CompressionContext.Default with { InputHessian = accumulator });
        GptqTensor byHand = new GptqQuantizer(new GptqOptions { Quantization = rtn, ActOrder = true })
            .Quantize(rotation.RotateWeight(w), rotation.RotateHessian(h, 128));

        Assert.Equal(parameters, rotated.Rotation);
        Assert.Equal(byHand.Quantized.PackedCodes.ToArray(), rotated.Quantized.PackedCodes.ToArray());
        Assert.Equal(byHand.Quantized.Scales.ToArray(), rotated.Quantized.Scales.ToArray());
        Assert.True(rotated.DecompressRotated().BitwiseEquals(byHand.Decompress()));
        Assert.True(rotated.Decompress().BitwiseEquals(rotation.UnrotateWeight(byHand.Decompress())));

        // The objective is basis-free: the one reported equals ½Σ δᵀHδ in the original basis.
        double direct = GptqReference.Objective(w, rotated.Decompress(), h);
        Assert.Equal(direct, rotated.Report!.Objective, direct * 1e-5);
    }

    [Fact]
    public void Rotation_HelpsMxfp4_OnWeightsWithOutliers()
    {
        // One fixed case, as a sanity check that the rotation is applied where it matters: heavy outliers in a few
        // input columns share MX scales with many small weights; spreading them over each block lowers the error.
        DenseTensor w = RandomData.GaussianMatrix(32, 256, seed: 11);
        for (int r = 0; r < w.Rows; r++)
        {
            w[r, 5] *= 40;
            w[r, 77] *= 40;
            w[r, 200] *= 40;
        }

        HessianAccumulator h = RandomData.CorrelatedHessian(256, 512, seed: 12);
        var context = CompressionContext.Default with { InputHessian = h };
        double plain = new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.Mxfp4 }).Quantize(w, context).Report!.Objective;
        double rotated = new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.Mxfp4, Rotation = new HadamardRotationParameters(32) })
            .Quantize(w, context).Report!.Objective;
        Assert.True(rotated < plain, $"rotated {rotated} vs plain {plain}");
    }

    [Fact]
    public void RotatedGptq_RoundTripsThroughTheSerializer()
    {
        DenseTensor w = RandomData.GaussianMatrix(8, 64, seed: 21);
        HessianAccumulator h = RandomData.CorrelatedHessian(64, 128, seed: 22);
        GptqTensor q = new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.Nvfp4, Rotation = new HadamardRotationParameters(16, 77) })
            .Quantize(w, CompressionContext.Default with { InputHessian = h });
        GptqTensor back = GptqData.SerializeRoundTrip(q);
        Assert.Equal(q.Rotation, back.Rotation);
        Assert.True(back.Decompress().BitwiseEquals(q.Decompress()));
        Assert.True(back.DecompressRotated().BitwiseEquals(q.DecompressRotated()));
    }

    [Fact]
    public void Rotation_WhoseBlockDoesNotDivideTheColumns_IsRefused()
    {
        DenseTensor w = RandomData.GaussianMatrix(4, 96, seed: 1);
        HessianAccumulator h = RandomData.CorrelatedHessian(96, 128, seed: 2);
        var options = new GptqOptions { Quantization = RtnOptions.Mxfp4, Rotation = new HadamardRotationParameters(64) };
        Assert.Throws<ArgumentException>("Rotation", () => new GptqQuantizer(options).Quantize(w, CompressionContext.Default with { InputHessian = h }));
    }
}
