using Compression.Text;

namespace Compression.Core.Tests;

public class TokenizerTests
{
    private static BpeTokenizer Synthetic()
    {
        // Merges: "a a" before "a b" before "▁ a"; byte tokens for ☃ (E2 98 83).
        const string Json = """
        {
          "added_tokens": [{"id": 0, "content": "<unk>"}],
          "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
          "pre_tokenizer": null,
          "model": {
            "type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
            "vocab": {"<unk>": 0, "\u2581": 1, "a": 2, "b": 3, "aa": 4, "ab": 5, "\u2581a": 6, "<0xE2>": 7, "<0x98>": 8, "<0x83>": 9},
            "merges": ["a a", "a b", "\u2581 a"]
          }
        }
        """;
        string path = Path.GetTempFileName();
        File.WriteAllText(path, Json);
        try
        {
            return BpeTokenizer.FromHuggingFaceJson(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Bpe_MergesLowestRankFirst_LeftmostAmongEqualRanks()
    {
        BpeTokenizer tokenizer = Synthetic();
        // "▁aaab": "a a" (rank 0) merges leftmost first: ▁ [aa] a b; then "a b" (rank 1): ▁ aa [ab]; "▁ a" never applies.
        Assert.Equal([1, 4, 5], tokenizer.Encode("aaab"));
        // "▁ab": "a b" (rank 1) beats "▁ a" (rank 2).
        Assert.Equal([1, 5], tokenizer.Encode("ab"));
        // "▁a": only "▁ a" applies.
        Assert.Equal([6], tokenizer.Encode("a"));
        Assert.Equal([6, 1, 5], tokenizer.Encode("a ab"));
        Assert.Equal("a ab", tokenizer.Decode([6, 1, 5]));
    }

    [Fact]
    public void Bpe_FallsBackToBytes_ThenToUnknown()
    {
        BpeTokenizer tokenizer = Synthetic();
        Assert.Equal([1, 7, 8, 9], tokenizer.Encode("☃"));
        Assert.Equal("☃", tokenizer.Decode([1, 7, 8, 9]));
        Assert.Equal([1, 0], tokenizer.Encode("é"));                       // its bytes have no tokens: <unk>
        Assert.Empty(tokenizer.Encode(""));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([10]));
    }

    [Fact]
    public void Bpe_RefusesWhatItDoesNotRun()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, """{"model": {"type": "WordPiece", "vocab": {}}}""");
            Assert.Throws<NotSupportedException>(() => BpeTokenizer.FromHuggingFaceJson(path));
            File.WriteAllText(path, """{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}""");
            Assert.Throws<NotSupportedException>(() => BpeTokenizer.FromHuggingFaceJson(path));
            File.WriteAllText(path, """{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}""");
            Assert.Throws<InvalidDataException>(() => BpeTokenizer.FromHuggingFaceJson(path));
            File.WriteAllText(path, "{oops");
            Assert.Throws<InvalidDataException>(() => BpeTokenizer.FromHuggingFaceJson(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
