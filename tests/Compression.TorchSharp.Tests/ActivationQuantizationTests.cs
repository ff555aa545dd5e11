using System.Text.Json.Nodes;
using Compression.Quantization;
using Compression.Quantization.Formats;
using Compression.Testing;
using Compression.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary>Simulated dynamic per-token FP8 activations (compressed-tensors' FP8_DYNAMIC): the fake quantization
/// against a scalar reference built on MiniFloatCodec, and the model paths (Quantizer.Apply, Pack, Save, Load).</summary>
[Collection("TorchSharp")]
public class ActivationQuantizationTests
{
    private static readonly ActivationQuantization Fp8 = ActivationQuantization.Fp8PerTokenDynamic;

    /// <summary>The rule written out per element in float32 with the library's E4M3 codec.</summary>
    private static float[] Reference(float[] row)
    {
        float amax = 0;
        foreach (float x in row)
        {
            amax = MathF.Max(amax, MathF.Abs(x));        // NaN propagates (IEEE 754-2019 maximum)
        }

        float scale = amax / 448f;
        if (scale == 0)
        {
            scale = 1;
        }

        return row.Select(x => MiniFloatCodec.Fp8E4M3.Decode(MiniFloatCodec.Fp8E4M3.Encode(x / scale)) * scale).ToArray();
    }

    private static float[] Run(float[] values, int rows, int columns)
    {
        using Tensor input = torch.tensor(values, [rows, columns]);
        using Tensor output = ActivationFakeQuantization.Apply(input, Fp8);
        Assert.Equal(ScalarType.Float32, output.dtype);
        Assert.Equal(input.shape, output.shape);
        return output.data<float>().ToArray();
    }

    [Fact]
    public void RandomRows_EqualTheScalarReferenceBitForBit()
    {
        var random = new Random(20261202);
        const int rows = 64, columns = 96;
        var values = new float[rows * columns];
        for (int r = 0; r < rows; r++)
        {
            // Rows over many magnitudes (E4M3 subnormals appear where a row's values span more than 2^15), with
            // outliers, exact grid values and ties placed on purpose.
            double magnitude = Math.Pow(10, random.Next(-30, 30) / 3.0);
            for (int c = 0; c < columns; c++)
            {
                double x = random.NextDouble() < 0.05 ? magnitude * 50 * (random.NextDouble() - 0.5) : magnitude * Normal(random);
                if (random.NextDouble() < 0.02)
                {
                    x *= 1e-6;
                }

                values[r * columns + c] = (float)x;
            }

            values[r * columns] = (float)(448 * magnitude);               // s = magnitude (nearly): grid points and ties
            values[r * columns + 1] = (float)(17 * magnitude);            // 17 = tie between 16 and 18 → 16
            values[r * columns + 2] = (float)(-0.0);
        }

        float[] actual = Run(values, rows, columns);
        int subnormal = 0;
        for (int r = 0; r < rows; r++)
        {
            float[] expected = Reference(values.AsSpan(r * columns, columns).ToArray());
            for (int c = 0; c < columns; c++)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(expected[c]), BitConverter.SingleToInt32Bits(actual[r * columns + c]));
            }

            float scale = values.AsSpan(r * columns, columns).ToArray().Max(MathF.Abs) / 448f;
            subnormal += expected.Count(v => v != 0 && MathF.Abs(v / scale) < MathF.ScaleB(1, -6));
        }

        Assert.True(subnormal > 0, "the rows exercise E4M3 subnormals");
        Assert.NotEqual(values, actual);                                  // the activations really were rounded
    }

    [Fact]
    public void ZeroRows_StayZero_NonFiniteRows_BecomeNaN_OthersUntouched()
    {
        float[] values =
        [
            0f, -0f, 0f, 0f,
            1f, float.NaN, 2f, 3f,
            1f, float.PositiveInfinity, 2f, 3f,
            0.1f, -0.2f, 0.3f, 1e-20f,
        ];
        float[] actual = Run(values, 4, 4);
        Assert.Equal([0, int.MinValue, 0, 0], actual[..4].Select(BitConverter.SingleToInt32Bits));    // signs kept
        Assert.All(actual[4..12], v => Assert.True(float.IsNaN(v)));
        Assert.Equal(Reference(values[12..]), actual[12..]);
        Assert.Equal(0f, actual[15]);                                      // far below the row's smallest subnormal
    }

    [Fact]
    public void OtherDtypes_AreComputedInFloat32AndCastBack_AndTheInputIsNotModified()
    {
        var random = new Random(5);
        float[] values = Enumerable.Range(0, 3 * 2 * 40).Select(_ => (float)Normal(random)).ToArray();
        using Tensor input = torch.tensor(values, [3, 2, 40]).to(ScalarType.BFloat16);
        using Tensor copy = input.clone();
        using Tensor output = ActivationFakeQuantization.Apply(input, Fp8);
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        Assert.True(input.equal(copy).all().item<bool>());
        using Tensor expected = ActivationFakeQuantization.Apply(input.to(ScalarType.Float32), Fp8).to(ScalarType.BFloat16);
        Assert.True(output.equal(expected).all().item<bool>());
        Assert.Throws<ArgumentException>(() => ActivationFakeQuantization.Apply(torch.ones(3, ScalarType.Int64), Fp8));
    }

    [Fact]
    public void Gradients_PassStraightThrough()
    {
        using Tensor x = torch.randn(4, 8).requires_grad_(true);
        using Tensor y = ActivationFakeQuantization.Apply(x, Fp8);
        using Tensor loss = (y * y).sum();
        loss.backward();
        using Tensor plain = ActivationFakeQuantization.Apply(x.detach(), Fp8);
        using Tensor expected = 2 * y.detach();
        Assert.True(x.grad!.equal(expected).all().item<bool>(), "d(y²)/dx must be 2y: the rounding passes the gradient straight through");
        Assert.True((y.detach() - plain).abs().max().item<float>() <= 1e-6f * plain.abs().max().item<float>());
    }

    [Fact]
    public void QuantizedLinear_QuantizesItsInputBeforeTheMatmul()
    {
        var random = new Random(9);
        var weight = new Compression.Tensors.DenseTensor(Enumerable.Range(0, 8 * 16).Select(_ => (float)Normal(random)).ToArray(), [8, 16]);
        CompressedTensor compressed = new RoundToNearestQuantizer(RtnOptions.Fp8PerChannel).Compress(weight, CompressionContext.Default);
        using var plain = new QuantizedLinear(compressed);
        using var w8a8 = new QuantizedLinear(compressed, inputActivations: Fp8);
        Assert.Same(Fp8, w8a8.InputActivations);
        Assert.Null(plain.InputActivations);
        using Tensor x = torch.randn(5, 16);
        using Tensor quantized = ActivationFakeQuantization.Apply(x, Fp8);
        using Tensor expected = plain.call(quantized);
        using Tensor actual = w8a8.call(x);
        using Tensor unquantized = plain.call(x);
        Assert.True(expected.equal(actual).all().item<bool>());
        Assert.False(unquantized.equal(actual).all().item<bool>());
    }

    [Fact]
    public void ApplyPackSaveLoad_SimulateTheActivationsTheCheckpointDeclares()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        using CausalLanguageModel weightOnly = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        QuantizationReport report = Quantizer.Apply(model, QuantizerOptions.W8A8Fp8Dynamic);
        Quantizer.Apply(weightOnly, QuantizerOptions.Fp8A16);
        Assert.All(report.Layers, l => Assert.Same(Fp8, l.InputActivations));
        using Tensor fake = Logits(model);
        using Tensor fp8 = Logits(weightOnly);
        Assert.False(fake.equal(fp8).all().item<bool>(), "the fake-quantized W8A8 model must quantize its activations");
        // The activations' rounding moves the logits a little, not a lot.
        Assert.True((fake - fp8).abs().max().item<float>() < 0.5f * fp8.abs().max().item<float>());

        Quantizer.Pack(model, report);
        Assert.All(model.named_modules().Select(m => m.module).OfType<QuantizedLinear>(), l => Assert.Same(Fp8, l.InputActivations));
        using Tensor packed = Logits(model);
        Assert.True(fake.equal(packed).all().item<bool>(), "packed W8A8 logits differ from fake-quantized ones");

        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        CompressedModels.Save(model, folder.Path);
        JsonObject group = JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!["quantization_config"]!["config_groups"]!
            .AsObject().Single().Value!.AsObject();
        Assert.Equal("token", group["input_activations"]!["strategy"]!.GetValue<string>());
        using CausalLanguageModel reloaded = HuggingFaceModels.Load(folder.Path);
        Assert.All(reloaded.named_modules().Select(m => m.module).OfType<QuantizedLinear>(), l => Assert.Equal(Fp8, l.InputActivations));
        using Tensor again = Logits(reloaded);
        Assert.True(packed.equal(again).all().item<bool>(), "the reloaded W8A8 model's logits differ");
    }

    [Fact]
    public void CancelledApply_LeavesNoActivationHook()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        using Tensor before = Logits(model);
        using var cancellation = new CancellationTokenSource();
        var progress = new SynchronousProgress(p =>
        {
            if (p.Completed == p.Total)
            {
                cancellation.Cancel();                    // after the last layer: only the hooks were left to add
            }
        });
        Assert.ThrowsAny<OperationCanceledException>(() => Quantizer.Apply(model, QuantizerOptions.W8A8Fp8Dynamic, [], progress, cancellation.Token));
        using Tensor after = Logits(model);
        Assert.True(before.equal(after).all().item<bool>(), "a cancelled run must leave the model as it was, activations included");
    }

    private sealed class SynchronousProgress(Action<CompressionProgress> report) : IProgress<CompressionProgress>
    {
        public void Report(CompressionProgress value) => report(value);
    }

    private static Tensor Logits(CausalLanguageModel model)
    {
        (_, int[] validation) = ShakespeareData.Split();
        using Tensor ids = torch.tensor(validation.AsSpan(0, 2 * 128).ToArray().Select(i => (long)i).ToArray(), [2, 128]);
        using var noGrad = torch.no_grad();
        return model.call(ids);
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
