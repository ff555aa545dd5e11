using Compression.Testing;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Adapters;

/// <summary>A short LoRA fine-tune of the real llama-shakespeare-char model (../shared/data/README.md).</summary>
[Collection("TorchSharp")]
public class LoraFineTuneTests(ITestOutputHelper output)
{
    [Fact]
    public void LoraFineTune_LowersHeldOutLoss()
    {
        torch.manual_seed(20261202);
        (int[] train, int[] validation) = ShakespeareData.Split();
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        ReadOnlySpan<int> heldOut = validation.AsSpan(0, 4 * 256 + 1);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double before = LanguageModelEvaluator.Evaluate(model, heldOut, window: 256, batchSize: 4).Loss;
        output.WriteLine($"eval {clock.Elapsed.TotalSeconds:F1}s");
        AdapterReport report = Lora.Apply(model, new LoraOptions { Rank = 8, Alpha = 16, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"] });
        output.WriteLine(report.ToString());
        var trainable = model.parameters().Where(p => p.requires_grad).ToArray();
        using var optimizer = torch.optim.AdamW(trainable, lr: 1e-3, weight_decay: 0);
        var random = new Random(7);
        model.train();
        int[] source = validation.AsSpan(4 * 256 + 1).ToArray();
        for (int step = 0; step < 30; step++)
        {
            using var scope = NewDisposeScope();
            long[] batch = Enumerable.Range(0, 4).SelectMany(_ => { int start = random.Next(source.Length - 129); return source.AsSpan(start, 129).ToArray(); }).Select(i => (long)i).ToArray();
            Tensor ids = torch.tensor(batch, [4, 129]);
            Tensor logits = model.call(ids[.., ..128]);
            Tensor loss = nn.functional.cross_entropy(logits.reshape(-1, model.VocabularySize), ids[.., 1..].reshape(-1));
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            if (step % 10 == 0) output.WriteLine($"step {step} loss {loss.item<float>():F4} t {clock.Elapsed.TotalSeconds:F1}s");
        }

        model.eval();
        double after = LanguageModelEvaluator.Evaluate(model, heldOut, window: 256, batchSize: 4).Loss;
        output.WriteLine($"held-out loss {before:F4} -> {after:F4} ({clock.Elapsed.TotalSeconds:F1}s)");
        Assert.True(after < before);
    }
}
