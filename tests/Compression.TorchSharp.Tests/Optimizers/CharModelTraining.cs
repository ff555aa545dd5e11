using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Optimizers;

/// <summary>
/// A small character-level Llama (the llama-shakespeare-char architecture shrunk to 2 layers of width 64) trained
/// from a seeded initialisation on tinyshakespeare, the same batches for every optimizer: what the acceptance test
/// and the figures of docs/galore.md run.
/// </summary>
internal static class CharModelTraining
{
    public const int Context = 64;
    public const int Batch = 16;

    public static LlamaConfig Config { get; } = new(HiddenSize: 64, IntermediateSize: 192, Layers: 2, Heads: 4, KeyValueHeads: 2,
        HeadDimension: 16, VocabularySize: 65, ContextLength: Context, RmsNormEpsilon: 1e-5, RopeTheta: 10000, TieWordEmbeddings: false);

    private static readonly Lazy<(int[] Train, int[] Validation)> Data = new(ShakespeareData.Split);

    /// <summary>A freshly initialised model; the same weights for the same seed.</summary>
    public static LlamaForCausalLM NewModel(int seed)
    {
        torch.manual_seed(seed);
        return new LlamaForCausalLM(Config);
    }

    /// <summary>Trains for <paramref name="steps"/> steps on seeded random windows of the training split.</summary>
    /// <returns>The mean training loss of the last 10 steps and the model's loss on the first 8192 validation tokens.</returns>
    public static (double TrainLoss, double ValidationLoss) Train(LlamaForCausalLM model, optim.Optimizer optimizer, int steps, int seed, bool evaluate = true)
    {
        int[] train = Data.Value.Train;
        var random = new Random(seed);
        var recent = new Queue<double>();
        model.train();
        for (int step = 0; step < steps; step++)
        {
            var inputs = new long[Batch * Context];
            var targets = new long[Batch * Context];
            for (int b = 0; b < Batch; b++)
            {
                int start = random.Next(train.Length - Context - 1);
                for (int t = 0; t < Context; t++)
                {
                    inputs[b * Context + t] = train[start + t];
                    targets[b * Context + t] = train[start + t + 1];
                }
            }

            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            Tensor logits = model.forward(torch.tensor(inputs, [Batch, Context]));
            Tensor loss = nn.functional.cross_entropy(logits.view(-1, Config.VocabularySize), torch.tensor(targets));
            loss.backward();
            optimizer.step();
            recent.Enqueue(loss.item<float>());
            if (recent.Count > 10)
            {
                recent.Dequeue();
            }
        }

        if (!evaluate)
        {
            return (recent.Average(), double.NaN);
        }

        model.eval();
        double validation = LanguageModelEvaluator.Evaluate(model, Data.Value.Validation.AsSpan(0, 8192), Context, batchSize: 64).Loss;
        return (recent.Average(), validation);
    }
}
