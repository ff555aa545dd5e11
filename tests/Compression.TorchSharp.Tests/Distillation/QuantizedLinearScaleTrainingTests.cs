using Compression.Quantization;
using Compression.Tensors;
using Compression.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Distillation;

/// <summary>
/// <see cref="QuantizedLinear"/>'s scale-training mode, which <see cref="Distiller"/> uses for
/// <see cref="Distillation.TrainableParts.QuantizationScales"/>: it starts at the dequantized layer's outputs, its
/// scale gradient is the ITunableTensor vector–Jacobian product, and committing keeps every code.
/// </summary>
[Collection("TorchSharp")]
public class QuantizedLinearScaleTrainingTests
{
    public static TheoryData<string> Weights() => ["int4-g32-f16", "int3-channel-f32", "gptq-permuted"];

    /// <summary>A 24×64 weight quantized as named; the GPTQ case stores its columns in a seeded permutation.</summary>
    private static CompressedTensor Quantized(string kind)
    {
        DenseTensor dense = RandomData.GaussianMatrix(24, 64, seed: 41, standardDeviation: 0.05f);
        var options = kind switch
        {
            "int3-channel-f32" => new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerChannel },
            _ => new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), ScaleStorage = ScaleEncoding.Float16 },
        };
        if (kind != "gptq-permuted")
        {
            return new RoundToNearestQuantizer(options).Compress(dense, CompressionContext.Default);
        }

        int[] permutation = Enumerable.Range(0, 64).OrderBy(i => new Random(i * 7919 + 3).Next()).ToArray();
        var stored = new DenseTensor(24, 64);
        for (int r = 0; r < 24; r++)
        {
            for (int k = 0; k < 64; k++)
            {
                stored[r, k] = dense[r, permutation[k]];
            }
        }

        var quantized = (QuantizedTensor)new RoundToNearestQuantizer(options).Compress(stored, CompressionContext.Default);
        return new GptqTensor(quantized, permutation);
    }

    private static QuantizedTensor Inner(CompressedTensor weight) => weight is GptqTensor gptq ? gptq.Quantized : (QuantizedTensor)weight;

    [Theory]
    [MemberData(nameof(Weights))]
    public void ScaleTraining_StartsAtTheDequantizedOutputs_HasTheTunableGradient_AndCommitsOnTheGrid(string kind)
    {
        CompressedTensor weight = Quantized(kind);
        using Tensor bias = torch.linspace(-1, 1, 24);
        using var layer = new QuantizedLinear(weight, bias);
        using Tensor x = torch.randn([5, 64], generator: new Generator(13));
        using Tensor before = layer.forward(x);

        var scales = layer.BeginScaleTraining(torch.CPU);
        using Tensor training = layer.forward(x);
        // The same float32 products u·s as decoding, then the same linear: equal bit for bit.
        Assert.True(before.eq(training).all().item<bool>(), "scale training changed the outputs");

        // L = Σ y, so ∂L/∂W[r, c] = Σ_b x[b, c]; the scales' gradient must be the tensor's vector–Jacobian product
        // (accumulated in float64 there, in float32 sums by autograd: 1e-5 relative covers 64-term float32 sums).
        using (Tensor sum = training.sum())
        {
            sum.backward();
        }

        var tunable = (ITunableTensor)weight;
        float[] theta = new float[tunable.TunableParameterCount];
        tunable.GetTunableParameters(theta);
        using Tensor columnSums = x.sum(0L, keepdim: false);
        float[] perColumn = columnSums.data<float>().ToArray();
        float[] weightGradient = new float[24 * 64];
        for (int i = 0; i < weightGradient.Length; i++)
        {
            weightGradient[i] = perColumn[i % 64];
        }

        float[] expected = new float[theta.Length];
        tunable.BackpropagateReconstruction(theta, weightGradient, expected);
        float[] actual = scales.grad!.data<float>().ToArray();
        for (int g = 0; g < expected.Length; g++)
        {
            Assert.Equal(expected[g], actual[g], Math.Abs(expected[g]) * 1e-5 + 1e-7);
        }

        using (torch.no_grad())
        {
            scales.mul_(1.1f);
        }

        float[] trained = scales.detach().data<float>().ToArray();
        byte[] codes = Inner(weight).UnpackCodes();
        layer.CommitScales();

        Assert.Null(layer.TrainedScales);
        Assert.Equal(weight.GetType(), layer.Weight.GetType());
        QuantizedTensor committed = Inner(layer.Weight);
        Assert.Equal(codes, committed.UnpackCodes());
        float[] expectedScales = kind == "int3-channel-f32" ? trained : trained.Select(s => (float)(Half)s).ToArray();
        Assert.Equal(expectedScales, committed.Scales.ToArray());
        if (layer.Weight is GptqTensor g2)
        {
            Assert.Equal(((GptqTensor)weight).Permutation, g2.Permutation);
        }

        // Back to dequantizing: outputs are those of nn.Linear with the committed weight.
        using Tensor after = layer.forward(x);
        using Tensor dense = layer.Weight.Decompress().ToTorchTensor();
        using Tensor reference = nn.functional.linear(x, dense, bias);
        Assert.True(after.eq(reference).all().item<bool>());
    }

    [Fact]
    public void BeginScaleTraining_TwiceOrOnPowerOfTwoScales_IsRefused()
    {
        using var layer = new QuantizedLinear(Quantized("int4-g32-f16"));
        layer.BeginScaleTraining(torch.CPU);
        Assert.Throws<InvalidOperationException>(() => layer.BeginScaleTraining(torch.CPU));
        layer.CommitScales();
        layer.CommitScales();       // outside training: nothing to do

        DenseTensor dense = RandomData.GaussianMatrix(4, 64, seed: 2);
        using var mx = new QuantizedLinear(new RoundToNearestQuantizer(RtnOptions.Mxfp4).Compress(dense, CompressionContext.Default));
        Assert.False(mx.CanTrainScales);
        Assert.Throws<InvalidOperationException>(() => mx.BeginScaleTraining(torch.CPU));
    }
}
