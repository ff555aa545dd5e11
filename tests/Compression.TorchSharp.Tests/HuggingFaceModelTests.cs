using Compression.Safetensors;
using Compression.Testing;
using Compression.Text;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary>
/// The Hugging Face loaders against the reference figures of ../shared/data/README.md: the shakespeare-char models'
/// validation losses (measured with PyTorch) and TinyStories-656K's greedy ids (measured with an independent
/// implementation).
/// </summary>
[Collection("TorchSharp")]
public class HuggingFaceModelTests(ITestOutputHelper output)
{
    private static int[] ShakespeareValidation()
    {
        Assert.Equal(ShakespeareData.Alphabet, CharacterTokenizer.FromCorpus(ShakespeareData.Text).Alphabet);
        return ShakespeareData.Split().Validation;
    }

    [Theory]
    [InlineData("gpt2-shakespeare-char", "GPT2LMHeadModel", 1.4561720398650773)]
    [InlineData("llama-shakespeare-char", "LlamaForCausalLM", 1.480168993719693)]
    public void ShakespeareModels_ReproduceTheirReferenceValidationLoss(string folder, string architecture, double reference)
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File(folder));
        Assert.Equal(architecture, model.Architecture);
        int[] validation = ShakespeareValidation();
        LanguageModelScore score = LanguageModelEvaluator.Evaluate(model, validation, window: 256, batchSize: 32);
        output.WriteLine($"{folder}: loss {score.Loss:F5} over {score.PredictedTokens} tokens in {score.Windows} windows (reference {reference:F5})");
        Assert.Equal(435, score.Windows);
        Assert.Equal(reference, score.Loss, 0.002);
    }

    [Fact]
    public void TinyStories656K_GreedyDecoding_GivesTheReferenceIds()
    {
        int[] expected =
        [
            1, 147, 201, 282, 215, 286, 598, 1662, 356, 499, 826, 1363, 1145, 1652, 615, 242, 1482, 951, 628, 499, 826, 872, 921, 318, 385, 628, 499,
            826, 617, 242, 198, 1047, 425, 1939, 122, 1924, 1171, 94, 303, 328, 229,
        ];
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        var ids = new List<long> { 1 };
        using (torch.no_grad())
        {
            for (int step = 0; step < 40; step++)
            {
                using var scope = NewDisposeScope();
                Tensor logits = model.forward(torch.tensor(ids.ToArray(), [1, ids.Count]));
                ids.Add(logits[0, -1].argmax().item<long>());
            }
        }

        Assert.Equal(expected.Select(i => (long)i), ids);
    }

    [Fact]
    public void Loader_NamesTheUnknownArchitecture_AndEveryMissingTensor()
    {
        var unknown = Assert.Throws<NotSupportedException>(() => HuggingFaceModels.CreateFromConfig("""{"architectures": ["MistralForCausalLM"]}"""));
        Assert.Contains("MistralForCausalLM", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("LlamaForCausalLM", unknown.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => HuggingFaceModels.CreateFromConfig("{not json"));
        Assert.Throws<InvalidDataException>(() => HuggingFaceModels.CreateFromConfig("""{"architectures": ["LlamaForCausalLM"], "hidden_size": 8}"""));

        // A checkpoint without two layers' attention weights: every missing name is listed.
        string folder = Directory.CreateTempSubdirectory("compression-loader-").FullName;
        try
        {
            string source = SharedData.File("tinystories-656k");
            File.Copy(Path.Combine(source, "config.json"), Path.Combine(folder, "config.json"));
            using (SafetensorsCheckpoint original = SafetensorsCheckpoint.Open(source))
            {
                var writer = new SafetensorsWriter();
                foreach (SafetensorsTensorInfo info in original.Tensors.Where(t => !t.Name.Contains("q_proj", StringComparison.Ordinal)))
                {
                    writer.Add(info.Name, original.ReadDense(info.Name));
                }

                writer.Save(Path.Combine(folder, "model.safetensors"));
            }

            var missing = Assert.Throws<InvalidDataException>(() => HuggingFaceModels.Load(folder));
            Assert.Contains("model.layers.0.self_attn.q_proj.weight", missing.Message, StringComparison.Ordinal);
            Assert.Contains("model.layers.1.self_attn.q_proj.weight", missing.Message, StringComparison.Ordinal);
            Assert.Contains("2 tensor(s)", missing.Message, StringComparison.Ordinal);

            // A shape mismatch names the tensor and both shapes.
            string config = File.ReadAllText(Path.Combine(source, "config.json")).Replace("\"intermediate_size\": 384", "\"intermediate_size\": 256", StringComparison.Ordinal);
            File.WriteAllText(Path.Combine(folder, "config.json"), config);
            using (SafetensorsCheckpoint original = SafetensorsCheckpoint.Open(source))
            {
                var writer = new SafetensorsWriter();
                foreach (SafetensorsTensorInfo info in original.Tensors)
                {
                    writer.Add(info.Name, original.ReadDense(info.Name));
                }

                writer.Save(Path.Combine(folder, "model.safetensors"));
            }

            var shape = Assert.Throws<InvalidDataException>(() => HuggingFaceModels.Load(folder));
            Assert.Contains("[384, 128]", shape.Message, StringComparison.Ordinal);
            Assert.Contains("[256, 128]", shape.Message, StringComparison.Ordinal);
            Assert.Throws<FileNotFoundException>(() => HuggingFaceModels.Load(Path.Combine(folder, "nowhere")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void CharacterTokenizer_RoundTrips_AndRejectsUnknownCharacters()
    {
        var tokenizer = new CharacterTokenizer("\n abc");
        int[] ids = tokenizer.Encode("ab c\n");
        Assert.Equal([2, 3, 1, 4, 0], ids);
        Assert.Equal("ab c\n", tokenizer.Decode(ids));
        Assert.Throws<ArgumentException>(() => tokenizer.Encode("abd"));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([5]));
        Assert.Throws<ArgumentException>(() => new CharacterTokenizer("aba"));
    }

    [Fact]
    public void Evaluator_RejectsWindowsThatDoNotFit()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        Assert.Throws<ArgumentException>(() => LanguageModelEvaluator.Evaluate(model, [1, 2, 3], window: 513));
        Assert.Throws<ArgumentException>(() => LanguageModelEvaluator.Evaluate(model, [1, 2, 3], window: 8));
        Assert.Throws<ArgumentException>(() => LanguageModelEvaluator.Evaluate(model, [1, 2, 4096, 3], window: 2));
    }
}
