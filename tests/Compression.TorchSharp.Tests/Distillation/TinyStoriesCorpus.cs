using System.Text;
using Compression.Testing;
using Compression.Text;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;

namespace Compression.TorchSharp.Tests.Distillation;

/// <summary>
/// TinyStories-656K and its validation sample split for distillation tests: the first 20,000 characters are held out
/// (the README's perplexity protocol scores them), the next 30,000 are the training text the students see.
/// </summary>
internal static class TinyStoriesCorpus
{
    public const int Bos = 1;

    private static readonly Lazy<(int[] HeldOut, int[] Train)> Tokens = new(() =>
    {
        string text = File.ReadAllText(SharedData.File("tinystories", "val-sample.txt"));
        Rune[] runes = text.EnumerateRunes().Take(50_000).ToArray();
        var tokenizer = BpeTokenizer.FromHuggingFaceJson(SharedData.File("tinystories-656k", "tokenizer.json"));
        return (tokenizer.Encode(Concat(runes.AsSpan(0, 20_000))), tokenizer.Encode(Concat(runes.AsSpan(20_000))));
    });

    /// <summary>The first 20,000 characters, BPE-encoded (never trained on).</summary>
    public static int[] HeldOut => Tokens.Value.HeldOut;

    /// <summary>Characters 20,000 to 50,000, BPE-encoded.</summary>
    public static int[] Train => Tokens.Value.Train;

    public static CausalLanguageModel Load() => HuggingFaceModels.Load(SharedData.File("tinystories-656k"));

    /// <summary>Held-out perplexity on the README's protocol over its first <paramref name="windows"/> windows of
    /// BOS + 255 tokens (8 windows: 2,040 predicted tokens; FP32 reference 29.250).</summary>
    public static double Perplexity(CausalLanguageModel model, int windows = 8) =>
        LanguageModelEvaluator.EvaluateWithBos(model, HeldOut.AsSpan(0, windows * 255), window: 256, bos: Bos).Perplexity;

    private static string Concat(ReadOnlySpan<Rune> runes)
    {
        var builder = new StringBuilder();
        foreach (Rune rune in runes)
        {
            builder.Append(rune.ToString());
        }

        return builder.ToString();
    }
}
