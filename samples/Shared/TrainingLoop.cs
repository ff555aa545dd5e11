// The next-token training loop of the fine-tuning and pre-training samples: random windows from a token stream,
// cross-entropy on every position, a held-out loss every few steps.

using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.Samples;

/// <summary>One point of a loss curve: the step, its training loss, and the held-out loss when it was measured.</summary>
internal sealed record LossPoint(int Step, double Train, double? HeldOut);

/// <summary>Trains a causal language model on next-token prediction with any TorchSharp optimizer.</summary>
internal static class TrainingLoop
{
    /// <summary>
    /// Runs <paramref name="steps"/> optimizer steps on batches of <paramref name="batch"/> windows of BOS +
    /// <paramref name="window"/> − 1 tokens drawn (seeded) from <paramref name="train"/>; scores
    /// <paramref name="heldOut"/> with the same windows before the first step and every <paramref name="evaluateEvery"/>
    /// steps. Returns the curve; reports one progress unit per step.
    /// </summary>
    public static List<LossPoint> Run(CausalLanguageModel model, OptimizerHelper optimizer, int[] train, int[] heldOut, int steps, int batch,
        int window, int bos, int evaluateEvery, IProgress<CompressionProgress>? progress = null, int seed = 1)
    {
        var random = new Random(seed);
        var curve = new List<LossPoint> { new(0, double.NaN, HeldOutLoss(model, heldOut, window, bos)) };
        for (int step = 1; step <= steps; step++)
        {
            model.train();
            double loss;
            using (NewDisposeScope())
            {
                long[] tokens = new long[batch * window];
                for (int b = 0; b < batch; b++)
                {
                    int start = random.Next(train.Length - window);
                    tokens[b * window] = bos;
                    for (int t = 1; t < window; t++)
                    {
                        tokens[b * window + t] = train[start + t - 1];
                    }
                }

                Tensor ids = torch.tensor(tokens, [batch, window]);
                Tensor logits = model.call(ids[.., ..(window - 1)]);
                Tensor lossTensor = nn.functional.cross_entropy(logits.reshape(-1, model.VocabularySize), ids[.., 1..].reshape(-1));
                optimizer.zero_grad();
                lossTensor.backward();
                optimizer.step();
                loss = lossTensor.item<float>();
            }

            double? heldOutLoss = step % evaluateEvery == 0 || step == steps ? HeldOutLoss(model, heldOut, window, bos) : null;
            curve.Add(new LossPoint(step, loss, heldOutLoss));
            progress?.Report(new CompressionProgress("step", $"loss {loss:F4}", step, steps));
        }

        model.eval();
        return curve;
    }

    /// <summary>Mean cross-entropy (nats per token) over windows of BOS + <paramref name="window"/> − 1 tokens.</summary>
    public static double HeldOutLoss(CausalLanguageModel model, int[] tokens, int window, int bos)
    {
        model.eval();
        using var noGrad = torch.no_grad();
        return LanguageModelEvaluator.EvaluateWithBos(model, tokens, window, bos).Loss;
    }

    /// <summary>Adds a training curve (thin) and its held-out points (markers) to <paramref name="plot"/>.</summary>
    public static void PlotCurve(ScottPlot.Plot plot, IReadOnlyList<LossPoint> curve, string label)
    {
        LossPoint[] trained = curve.Where(p => !double.IsNaN(p.Train)).ToArray();
        var train = plot.Add.Scatter(trained.Select(p => (double)p.Step).ToArray(), trained.Select(p => p.Train).ToArray());
        train.LegendText = $"{label}, train";
        train.MarkerSize = 0;
        train.LineWidth = 1;
        LossPoint[] held = curve.Where(p => p.HeldOut is not null).ToArray();
        var heldOut = plot.Add.Scatter(held.Select(p => (double)p.Step).ToArray(), held.Select(p => p.HeldOut!.Value).ToArray());
        heldOut.LegendText = $"{label}, held-out";
        heldOut.MarkerSize = 7;
        heldOut.LineWidth = 2;
        heldOut.Color = train.Color;
    }
}
