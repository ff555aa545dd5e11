// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using System.Globalization;
using Compression.Tool.Infrastructure;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;

namespace Compression.Tool.Commands;

/// <summary>
/// <c>compress eval</c>: next-token loss and perplexity of a checkpoint (plain, or compressed-tensors as written by
/// <c>compress quantize</c>) on a text file, in non-overlapping windows scored independently
/// (<see cref="LanguageModelEvaluator"/>): BOS + window − 1 text tokens for Hugging Face BPE tokenizers (the
/// TinyStories protocol), windows of plain text for character vocabularies (the shakespeare-char protocol).
/// </summary>
internal static class EvalCommand
{
    /// <summary>The eval command's arguments.</summary>
    internal sealed record Settings(string Checkpoint, string Data, int Window, int? MaxTokens, string? Tokenizer, int BatchSize);

    /// <summary>Runs the command.</summary>
    public static EvalResult Run(Settings settings, ToolContext context)
    {
        if (settings.Window < 2)
        {
            throw ToolException.Usage($"--window must be at least 2; got {settings.Window}.");
        }

        if (settings.MaxTokens is < 2)
        {
            throw ToolException.Usage($"--max-tokens must be at least 2; got {settings.MaxTokens}.");
        }

        if (settings.BatchSize < 1)
        {
            throw ToolException.Usage($"--batch-size must be at least 1; got {settings.BatchSize}.");
        }

        CheckpointLocation input = CheckpointLocation.Resolve(settings.Checkpoint);
        input.RequireModelFolder();
        if (!File.Exists(settings.Data))
        {
            throw ToolException.Input($"data file '{settings.Data}' does not exist.");
        }

        TextData text = TextData.Load(settings.Tokenizer, input);
        int[] tokens = text.Encode(settings.Data, "data file", settings.MaxTokens);
        var clock = Stopwatch.StartNew();
        using CausalLanguageModel model = ModelLoader.Load(input);
        if (settings.Window > model.ContextLength)
        {
            throw ToolException.Usage($"--window {settings.Window} exceeds the model's context of {model.ContextLength} tokens.");
        }

        if (text.Tokenizer.VocabularySize > model.VocabularySize)
        {
            throw ToolException.Input($"the tokenizer '{text.Source}' has {text.Tokenizer.VocabularySize} tokens, more than the model's vocabulary of {model.VocabularySize}.");
        }

        int needed = text.Bos is null ? settings.Window + 1 : settings.Window - 1;
        if (tokens.Length < needed)
        {
            throw ToolException.Input($"'{settings.Data}' gives {tokens.Length} tokens, fewer than one window needs ({needed}); lower --window or raise --max-tokens.");
        }

        LanguageModelScore score = context.WithProgress(progress => text.Bos is int bos
            ? LanguageModelEvaluator.EvaluateWithBos(model, tokens, settings.Window, bos, settings.BatchSize, progress, context.CancellationToken)
            : LanguageModelEvaluator.Evaluate(model, tokens, settings.Window, settings.BatchSize, progress, context.CancellationToken));
        return new EvalResult(input.Folder, settings.Data, text.Kind, text.Bos, settings.Window, tokens.Length, score.Windows, score.PredictedTokens,
            score.Loss, score.Perplexity, clock.Elapsed.TotalSeconds);
    }
}

/// <summary>What <c>compress eval</c> reports: the mean cross-entropy in nats over the scored tokens and its exponential.</summary>
internal sealed record EvalResult(string Checkpoint, string Data, string Tokenizer, int? Bos, int Window, int InputTokens, int Windows,
    long ScoredTokens, double Loss, double Perplexity, double Seconds) : ICommandResult
{
    /// <inheritdoc/>
    public void WriteText(TextWriter output) => output.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"loss {Loss:F4} nats, perplexity {Perplexity:F3} over {ScoredTokens:N0} tokens in {Windows} windows of {Window}{(Bos is int b ? $" (BOS {b} + {Window - 1})" : "")} ({Tokenizer} tokenizer, {Seconds:F1} s)"));
}
