// The TinyStories-656K fixture and its perplexity protocol (../shared/data/README.md), shared by the samples that
// compress, prune or fine-tune it.

using System.Text;
using Compression.Text;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;

namespace Compression.Samples;

/// <summary>
/// TinyStories-656K's BPE tokenizer, the evaluation tokens (the first 20,000 characters of
/// <c>tinystories/val-sample.txt</c>) and training or calibration tokens from the characters after them, so that
/// nothing a sample calibrates or trains on is ever scored.
/// </summary>
internal sealed class TinyStoriesData
{
    /// <summary>The beginning-of-story token that starts every window.</summary>
    public const int Bos = 1;

    /// <summary>Evaluation windows: BOS + 255 stream tokens.</summary>
    public const int Window = 256;

    /// <summary>How many windows the protocol scores (2,040 predicted tokens).</summary>
    public const int EvaluationWindows = 8;

    private const int EvaluationCharacters = 20_000;

    private TinyStoriesData(BpeTokenizer tokenizer, int[] evaluation, string rest)
    {
        Tokenizer = tokenizer;
        EvaluationTokens = evaluation;
        RestText = rest;
    }

    /// <summary>The checkpoint folder (config.json, model.safetensors, tokenizer.json).</summary>
    public static string ModelFolder => DataFolder.File("tinystories-656k");

    /// <summary>The model's BPE tokenizer.</summary>
    public BpeTokenizer Tokenizer { get; }

    /// <summary>The first 20,000 characters (code points) of the validation sample, encoded.</summary>
    public int[] EvaluationTokens { get; }

    /// <summary>Every character of the validation sample after the evaluation text.</summary>
    public string RestText { get; }

    /// <summary>Reads the tokenizer and the validation sample.</summary>
    public static TinyStoriesData Load()
    {
        BpeTokenizer tokenizer = BpeTokenizer.FromHuggingFaceJson(DataFolder.File("tinystories-656k", "tokenizer.json"));
        string text = File.ReadAllText(DataFolder.File("tinystories", "val-sample.txt"));
        // Characters are code points, as in the protocol; the text is ASCII in practice but a rune-wise cut is exact.
        var evaluation = new StringBuilder();
        int offset = 0, count = 0;
        foreach (Rune rune in text.EnumerateRunes())
        {
            if (count++ == EvaluationCharacters)
            {
                break;
            }

            evaluation.Append(rune.ToString());
            offset += rune.Utf16SequenceLength;
        }

        return new TinyStoriesData(tokenizer, tokenizer.Encode(evaluation.ToString()), text[offset..]);
    }

    /// <summary>Loads the FP32 checkpoint.</summary>
    public static CausalLanguageModel LoadModel() => HuggingFaceModels.Load(ModelFolder);

    /// <summary>Perplexity over the protocol's 8 windows of BOS + 255 tokens.</summary>
    public double Perplexity(CausalLanguageModel model) =>
        LanguageModelEvaluator.EvaluateWithBos(model, EvaluationTokens.AsSpan(0, EvaluationWindows * (Window - 1)), window: Window, bos: Bos).Perplexity;

    /// <summary>
    /// Encodes the first <paramref name="characters"/> characters after the evaluation text (stories never scored).
    /// </summary>
    public int[] TrainingTokens(int characters) => Tokenizer.Encode(RestText[..Math.Min(characters, RestText.Length)]);

    /// <summary>
    /// <paramref name="count"/> calibration sequences of BOS + <paramref name="length"/> − 1 consecutive tokens taken
    /// from the text after the evaluation text: the windows the model sees when it is scored, on other stories.
    /// </summary>
    public int[][] CalibrationSequences(int count, int length = Window)
    {
        // About 4.5 characters per token on this vocabulary; encode a little more than needed.
        int[] tokens = TrainingTokens(count * (length - 1) * 6);
        if (tokens.Length < count * (length - 1))
        {
            DataFolder.Fail($"The validation sample holds {tokens.Length} tokens after its evaluation text; {count} calibration sequences of {length} need {count * (length - 1)}.");
        }

        return Enumerable.Range(0, count)
            .Select(i => (int[])[Bos, .. tokens.AsSpan(i * (length - 1), length - 1)])
            .ToArray();
    }
}
