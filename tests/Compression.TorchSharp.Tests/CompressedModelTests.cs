using System.Text.Json.Nodes;
using Compression.Quantization;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.Testing;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary>Packed models, and compressed checkpoints saved and loaded back, on the shakespeare-char models.</summary>
[Collection("TorchSharp")]
public class CompressedModelTests
{
    // Every format with a compressed-tensors layout in one model: INT4 g32 by default (q, k, v), FP8 on o_proj,
    // NVFP4 on up_proj, MXFP4 on gate_proj, asymmetric INT8 per channel with float16 scales on down_proj.
    private static readonly QuantizerOptions Mixed = QuantizerOptions.W4A16 with
    {
        Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) },
        Overrides =
        [
            new("*.o_proj", RtnOptions.Fp8PerChannel),
            new("*.up_proj", RtnOptions.Nvfp4),
            new("*.gate_proj", RtnOptions.Mxfp4),
            new("*.down_proj", RtnOptions.W8PerChannel with { Symmetric = false, ScaleStorage = ScaleEncoding.Float16 }),
        ],
    };

    private static Tensor Logits(CausalLanguageModel model)
    {
        (_, int[] validation) = ShakespeareData.Split();
        using Tensor ids = torch.tensor(validation.AsSpan(0, 2 * 256).ToArray().Select(i => (long)i).ToArray(), [2, 256]);
        using var noGrad = torch.no_grad();
        return model.call(ids);
    }

    [Fact]
    public void Packed_EqualsFakeQuantized_SavesAndLoadsBitIdentically()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        long denseWeights = model.parameters().Sum(p => p.numel());
        QuantizationReport report = Quantizer.Apply(model, Mixed);
        using Tensor fake = Logits(model);

        Assert.Equal(42, Quantizer.Pack(model, report));
        Assert.DoesNotContain(model.named_modules(), m => m.module is Linear && m.name.Contains("layers", StringComparison.Ordinal));
        Assert.Equal(42, model.named_modules().Select(m => m.module).OfType<QuantizedLinear>().Distinct().Count());
        Assert.DoesNotContain(model.named_parameters(), p => p.name.EndsWith("q_proj.weight", StringComparison.Ordinal));
        Assert.True(model.parameters().Sum(p => p.numel()) < denseWeights / 10, "the packed model keeps no dense copy of the quantized weights");
        using Tensor packed = Logits(model);
        Assert.True(fake.equal(packed).all().item<bool>(), "packed logits differ from fake-quantized ones");

        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        CompressedModels.Save(model, folder.Path);
        var config = JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!.AsObject();
        var quantization = config["quantization_config"]!.AsObject();
        Assert.Equal("compressed-tensors", quantization["quant_method"]!.GetValue<string>());
        Assert.Equal("mixed-precision", quantization["format"]!.GetValue<string>());
        Assert.Equal(5, quantization["config_groups"]!.AsObject().Count);
        Assert.Equal("LlamaForCausalLM", config["architectures"]![0]!.GetValue<string>());
        using (SafetensorsCheckpoint file = SafetensorsCheckpoint.Open(folder.Path))
        {
            Assert.Equal(SafetensorsDType.I32, file.GetInfo("model.layers.0.mlp.down_proj.weight_packed").DType);
            Assert.True(file.Contains("model.layers.0.mlp.down_proj.weight_zero_point"));
            Assert.Equal(SafetensorsDType.F16, file.GetInfo("model.layers.0.mlp.down_proj.weight_scale").DType);
            Assert.Equal(SafetensorsDType.F8_E4M3, file.GetInfo("model.layers.3.self_attn.o_proj.weight").DType);
            Assert.Equal(SafetensorsDType.U8, file.GetInfo("model.layers.5.mlp.gate_proj.weight_scale").DType);
            Assert.True(file.Contains("model.layers.5.mlp.up_proj.weight_global_scale"));
            Assert.Equal(SafetensorsDType.BF16, file.GetInfo("lm_head.weight").DType);          // dense tensors keep their dtype
            Assert.False(file.Contains("model.layers.0.mlp.up_proj.weight"));
            long size = new FileInfo(file.Files[0].FilePath).Length, original = new FileInfo(SharedData.File("llama-shakespeare-char", "model.safetensors")).Length;
            Assert.True(size < original / 2, $"{size} bytes of {original}: {string.Join(", ", file.Tensors.Where(t => t.ByteLength > 100000).Select(t => t.Name + " " + t.ByteLength))}");
        }

        using CausalLanguageModel reloaded = HuggingFaceModels.Load(folder.Path);
        Assert.Equal(42, reloaded.named_modules().Select(m => m.module).OfType<QuantizedLinear>().Distinct().Count());
        using Tensor again = Logits(reloaded);
        Assert.True(packed.equal(again).all().item<bool>(), "reloaded logits differ");

        // Saving the reloaded model again gives the same files.
        using TemporaryDirectory second = RandomData.CreateTemporaryDirectory();
        CompressedModels.Save(reloaded, second.Path);
        Assert.Equal(File.ReadAllBytes(folder.File("model.safetensors")), File.ReadAllBytes(second.File("model.safetensors")));
        Assert.Equal(File.ReadAllText(folder.File("config.json")), File.ReadAllText(second.File("config.json")));
    }

    [Fact]
    public void FakeQuantizedModel_SavesFromItsReport_Gpt2WithBiases()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("gpt2-shakespeare-char"));
        QuantizationReport report = Quantizer.Apply(model, QuantizerOptions.W8A16);
        using Tensor fake = Logits(model);
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        CompressedModels.Save(model, report, folder.Path);
        using CausalLanguageModel reloaded = HuggingFaceModels.Load(folder.Path);
        Assert.Equal(report.Layers.Count, reloaded.named_modules().Select(m => m.module).OfType<QuantizedLinear>().Distinct().Count());
        Assert.All(reloaded.named_modules().Select(m => m.module).OfType<QuantizedLinear>(), q => Assert.NotNull(q.Bias));
        using Tensor again = Logits(reloaded);
        Assert.True(fake.equal(again).all().item<bool>(), "reloaded GPT-2 logits differ from the fake-quantized model's");
    }

    [Theory]
    [InlineData("llama-shakespeare-char")]
    [InlineData("gpt2-shakespeare-char")]
    public void StreamedCheckpointQuantization_WritesTheModelPathsBytes(string name)
    {
        QuantizerOptions options = name.StartsWith("llama", StringComparison.Ordinal) ? Mixed : QuantizerOptions.W4A16;
        using TemporaryDirectory streamed = RandomData.CreateTemporaryDirectory(), viaModel = RandomData.CreateTemporaryDirectory();
        var progress = new List<CompressionProgress>();
        CheckpointQuantizationResult result = Quantization.Checkpoints.CheckpointQuantizer.Quantize(
            SharedData.File(name), streamed.Path, options, new Recorder(progress));

        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File(name));
        QuantizationReport report = Quantizer.Apply(model, options);
        CompressedModels.Save(model, report, viaModel.Path);

        Assert.Equal(report.Layers.Count, result.Modules.Count);
        Assert.Equal(result.Modules.Count, progress.Count);
        Assert.True(result.CompressedBits < result.OriginalBits / 2);
        using (SafetensorsCheckpoint a = SafetensorsCheckpoint.Open(viaModel.Path), b = SafetensorsCheckpoint.Open(streamed.Path))
        {
            Assert.Equal(a.Tensors.Select(t => t.Name), b.Tensors.Select(t => t.Name));
            Assert.All(a.Tensors, t => Assert.True(a.GetBytes(t.Name).SequenceEqual(b.GetBytes(t.Name)), $"{t.Name} differs"));
        }

        Assert.Equal(File.ReadAllBytes(viaModel.File("model.safetensors")), File.ReadAllBytes(streamed.File("model.safetensors")));
        Assert.Equal(File.ReadAllText(viaModel.File("config.json")), File.ReadAllText(streamed.File("config.json")));

        // The streamed checkpoint loads into the same model: logits equal the fake-quantized model's bit for bit.
        using Tensor fake = Logits(model);
        using CausalLanguageModel reloaded = HuggingFaceModels.Load(streamed.Path);
        using Tensor again = Logits(reloaded);
        Assert.True(fake.equal(again).all().item<bool>());
    }

    [Fact]
    public void StreamedCheckpointQuantization_RefusesBadRequests()
    {
        using TemporaryDirectory output = RandomData.CreateTemporaryDirectory();
        string llama = SharedData.File("llama-shakespeare-char");
        Assert.Throws<ArgumentException>(() => Quantization.Checkpoints.CheckpointQuantizer.Quantize(llama, output.Path,
            QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq }));
        Assert.Throws<ArgumentException>(() => Quantization.Checkpoints.CheckpointQuantizer.Quantize(llama, llama, QuantizerOptions.W4A16));
        Assert.Throws<ArgumentException>(() => Quantization.Checkpoints.CheckpointQuantizer.Quantize(llama, output.Path,
            QuantizerOptions.W4A16 with { Targets = ["*.no_such_proj"] }));
        Assert.Throws<FileNotFoundException>(() => Quantization.Checkpoints.CheckpointQuantizer.Quantize(output.Path, output.File("out"), QuantizerOptions.W4A16));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => Quantization.Checkpoints.CheckpointQuantizer.Quantize(llama, output.File("c"),
            QuantizerOptions.W4A16, cancellationToken: cancelled.Token));
        Assert.False(Directory.Exists(output.File("c")) && File.Exists(output.File("c/model.safetensors")));
    }

    [Fact]
    public void BadInputs_GiveClearErrors()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        Assert.Throws<InvalidOperationException>(() => CompressedModels.Save(model, folder.Path));           // nothing quantized
        QuantizationReport nf4 = Quantizer.Apply(model, QuantizerOptions.W4A16 with { Quantization = RtnOptions.Nf4 });
        Assert.Throws<NotSupportedException>(() => CompressedModels.Save(model, nf4, folder.Path));
        Assert.False(File.Exists(folder.File("model.safetensors")));
        Quantizer.Pack(model, nf4);
        Assert.Throws<ArgumentException>(() => Quantizer.Pack(model, nf4));                                 // already packed
    }
}
