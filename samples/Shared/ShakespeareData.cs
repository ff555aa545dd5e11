// The shakespeare-char protocol of ../shared/data/README.md, shared by the *Shakespeare samples.

using System.Text.Json;
using Compression.Text;

namespace Compression.Samples;

/// <summary>
/// tinyshakespeare encoded with the 65-character vocabulary of <c>meta.json</c>, split 90% / 10% into training and
/// validation, with the 32 calibration windows of 256 characters that docs/results.md uses.
/// </summary>
/// <param name="Text">The whole corpus.</param>
/// <param name="Tokenizer">One id per character, in the vocabulary's order.</param>
/// <param name="Train">The first int(0.9·N) ids.</param>
/// <param name="Validation">The rest, cut to the requested number of 256-character windows plus the last target.</param>
/// <param name="Calibration">32 windows of 256 ids spread evenly over the training split.</param>
internal sealed record ShakespeareData(string Text, CharacterTokenizer Tokenizer, int[] Train, int[] Validation, int[][] Calibration)
{
    /// <summary>Reads and splits the corpus; <paramref name="windows"/> limits the validation split (default: all 435).</summary>
    public static ShakespeareData Load(int windows = int.MaxValue)
    {
        string text = File.ReadAllText(DataFolder.File("tinyshakespeare", "input.txt"));
        string alphabet = JsonDocument.Parse(File.ReadAllText(DataFolder.File("meta.json"))).RootElement.GetProperty("vocab").GetString()!;
        var tokenizer = new CharacterTokenizer(alphabet);
        int[] ids = tokenizer.Encode(text);
        int split = (int)(0.9 * text.Length);
        int[] train = ids[..split], validation = ids[split..];
        if (windows != int.MaxValue)
        {
            validation = validation[..(windows * 256 + 1)];
        }

        int[][] calibration = Enumerable.Range(0, 32).Select(i => train.AsSpan(i * (train.Length / 32), 256).ToArray()).ToArray();
        return new ShakespeareData(text, tokenizer, train, validation, calibration);
    }
}
