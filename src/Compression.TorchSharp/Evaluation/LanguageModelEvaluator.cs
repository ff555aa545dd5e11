// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;
using Compression.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Evaluation;

/// <summary>Next-token loss over a token stream.</summary>
/// <param name="Loss">Mean cross-entropy in nats per predicted token.</param>
/// <param name="PredictedTokens">Tokens scored.</param>
/// <param name="Windows">Windows evaluated.</param>
public sealed record LanguageModelScore(double Loss, long PredictedTokens, int Windows)
{
    /// <summary>exp(<see cref="Loss"/>).</summary>
    public double Perplexity => Math.Exp(Loss);
}

/// <summary>
/// Scores a model on non-overlapping windows of a token stream, each window independently (no carried context), as the
/// protocols in <c>../shared/data/README.md</c> define.
/// </summary>
public static class LanguageModelEvaluator
{
    /// <summary>
    /// Windows of <paramref name="window"/> inputs starting at 0, w, 2w, …, each predicting the next token at every
    /// position; only windows whose inputs and last target fit are scored (the shakespeare-char protocol).
    /// </summary>
    /// <exception cref="ArgumentException">The window is not in [1, context], an id is outside the vocabulary, or no
    /// window fits.</exception>
    public static LanguageModelScore Evaluate(CausalLanguageModel model, ReadOnlySpan<int> tokens, int window, int batchSize = 16,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Run(model, tokens, window, null, batchSize, progress, cancellationToken);

    /// <summary>
    /// Windows of <paramref name="bos"/> followed by <paramref name="window"/> − 1 tokens of the stream (chunks at 0,
    /// w − 1, …), scoring the prediction of each of those tokens (the TinyStories protocol: BOS + 255 tokens).
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="Evaluate"/>.</exception>
    public static LanguageModelScore EvaluateWithBos(CausalLanguageModel model, ReadOnlySpan<int> tokens, int window, int bos, int batchSize = 16,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Run(model, tokens, window, bos, batchSize, progress, cancellationToken);

    private static LanguageModelScore Run(CausalLanguageModel model, ReadOnlySpan<int> tokens, int window, int? bos, int batchSize,
        IProgress<CompressionProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (window < 1 || window > model.ContextLength)
        {
            throw new ArgumentException($"The window must lie in [1, {model.ContextLength}] (the model's context); got {window}.", nameof(window));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        foreach (int id in tokens)
        {
            if ((uint)id >= (uint)model.VocabularySize)
            {
                throw new ArgumentException($"Token id {id} is outside the model's vocabulary of {model.VocabularySize}.", nameof(tokens));
            }
        }

        if (bos is int b && (uint)b >= (uint)model.VocabularySize)
        {
            throw new ArgumentException($"BOS id {b} is outside the model's vocabulary of {model.VocabularySize}.", nameof(bos));
        }

        // Without BOS a window needs w + 1 tokens (w inputs, targets shifted by one); with BOS, w − 1 stream tokens.
        int stride = bos is null ? window : window - 1;
        int need = bos is null ? window + 1 : window - 1;
        int windows = stride == 0 ? 0 : tokens.Length < need ? 0 : (tokens.Length - need) / stride + 1;
        if (windows == 0)
        {
            throw new ArgumentException($"{tokens.Length} tokens hold no complete window of {window}.", nameof(tokens));
        }

        int predicted = bos is null ? window : window - 1;
        double total = 0;
        using var noGrad = torch.no_grad();
        for (int first = 0; first < windows; first += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(batchSize, windows - first);
            var inputs = new long[count * window];
            var targets = new long[count * predicted];
            for (int w = 0; w < count; w++)
            {
                int start = (first + w) * stride;
                if (bos is int begin)
                {
                    inputs[w * window] = begin;
                    for (int t = 1; t < window; t++)
                    {
                        inputs[w * window + t] = tokens[start + t - 1];
                    }

                    for (int t = 0; t < predicted; t++)
                    {
                        targets[w * predicted + t] = tokens[start + t];
                    }
                }
                else
                {
                    for (int t = 0; t < window; t++)
                    {
                        inputs[w * window + t] = tokens[start + t];
                        targets[w * predicted + t] = tokens[start + t + 1];
                    }
                }
            }

            using var scope = NewDisposeScope();
            Tensor logits = model.forward(torch.tensor(inputs, [count, window]));
            Tensor scored = logits.narrow(1, 0, predicted).reshape(count * predicted, model.VocabularySize);
            Tensor loss = nn.functional.cross_entropy(scored.to(ScalarType.Float64), torch.tensor(targets), reduction: nn.Reduction.Sum);
            total += loss.item<double>();
            progress?.Report(new CompressionProgress("evaluate", null, Math.Min(first + batchSize, windows), windows));
        }

        long scoredTokens = (long)windows * predicted;
        return new LanguageModelScore(total / scoredTokens, scoredTokens, windows);
    }
}
