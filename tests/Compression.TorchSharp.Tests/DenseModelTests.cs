using System.Text.Json.Nodes;
using Compression.Pruning;
using Compression.Safetensors;
using Compression.Testing;
using Compression.TorchSharp.Models;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary><see cref="DenseModels.Save"/>: dense models written back in their checkpoint's names, orientation and
/// dtypes.</summary>
[Collection("TorchSharp")]
public class DenseModelTests
{
    [Theory]
    [InlineData("llama-shakespeare-char")]
    [InlineData("gpt2-shakespeare-char")]      // Conv1D weights go back to [in, out]
    public void Save_UnchangedModel_WritesEveryTensorOfTheCheckpointByteForByte(string name)
    {
        string source = SharedData.File(name);
        using CausalLanguageModel model = HuggingFaceModels.Load(source);
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        DenseModels.Save(model, folder.Path);

        using SafetensorsCheckpoint original = SafetensorsCheckpoint.Open(source);
        using SafetensorsCheckpoint saved = SafetensorsCheckpoint.Open(folder.Path);
        foreach (SafetensorsTensorInfo info in saved.Tensors)
        {
            // GPT-2 checkpoints may store names without the "transformer." prefix; the model's names carry it.
            string stored = original.Contains(info.Name) ? info.Name : info.Name["transformer.".Length..];
            Assert.True(original.Contains(stored), $"{info.Name} is not in the original checkpoint");
            Assert.Equal(original.GetInfo(stored).DType, info.DType);
            Assert.Equal(original.GetInfo(stored).Shape, info.Shape);
            Assert.True(original.GetBytes(stored).SequenceEqual(saved.GetBytes(info.Name)), $"{info.Name} differs");
        }

        Assert.Equal(original.Tensors.Count, saved.Tensors.Count);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json"))),
            JsonNode.Parse(File.ReadAllText(folder.File("config.json")))), "config.json differs");
    }

    [Fact]
    public void Save_PrunedModel_ReloadsWithTheSameLogits()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        Pruner.Apply(model, new PrunerOptions(NofMOptions.TwoOfFour.CreateCompressor()));
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        DenseModels.Save(model, folder.Path);
        Assert.Null(JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!["quantization_config"]);

        using CausalLanguageModel again = HuggingFaceModels.Load(folder.Path);
        (_, int[] validation) = ShakespeareData.Split();
        using Tensor ids = tensor(validation.AsSpan(0, 256).ToArray().Select(i => (long)i).ToArray(), [1, 256]);
        using var noGrad = no_grad();
        using Tensor before = model.call(ids);
        using Tensor after = again.call(ids);
        // The pruned float32 weights were BF16 values to begin with (magnitude pruning only zeroes), so BF16 storage is exact.
        Assert.True(before.equal(after).all().item<bool>(), "reloaded logits differ");
    }

    [Fact]
    public void Save_PackedModel_IsRefused()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        Quantizer.Pack(model, Quantizer.Apply(model, QuantizerOptions.W4A16));
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var refused = Assert.Throws<InvalidOperationException>(() => DenseModels.Save(model, folder.Path));
        Assert.Contains("CompressedModels.Save", refused.Message);
        Assert.False(File.Exists(folder.File("model.safetensors")));
    }
}
