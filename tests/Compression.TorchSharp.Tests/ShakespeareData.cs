using System.Text.Json;
using Compression.Testing;
using Compression.Text;

namespace Compression.TorchSharp.Tests;

/// <summary>tinyshakespeare as the shakespeare-char models see it (../shared/data/README.md): the alphabet of
/// meta.json, the first 90% of the characters for training, the last 10% for validation.</summary>
internal static class ShakespeareData
{
    public static string Text { get; } = File.ReadAllText(SharedData.File("tinyshakespeare", "input.txt"));

    public static string Alphabet { get; } =
        JsonDocument.Parse(File.ReadAllText(SharedData.File("meta.json"))).RootElement.GetProperty("vocab").GetString()!;

    public static (int[] Train, int[] Validation) Split()
    {
        int[] ids = new CharacterTokenizer(Alphabet).Encode(Text);
        int split = (int)(0.9 * Text.Length);
        return (ids[..split], ids[split..]);
    }
}
