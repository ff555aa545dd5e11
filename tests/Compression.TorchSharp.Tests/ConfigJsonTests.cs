using Compression.TorchSharp.Models;

namespace Compression.TorchSharp.Tests;

/// <summary>A config.json with a key given twice is refused as corrupt (InvalidDataException), never an ArgumentException
/// from System.Text.Json's JsonNode on first access.</summary>
public class ConfigJsonTests
{
    [Theory]
    [InlineData("{\"architectures\":[\"LlamaForCausalLM\"],\"architectures\":[\"GPT2LMHeadModel\"]}")]
    [InlineData("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"hidden_size\":32}")]
    public void Load_ConfigWithADuplicateKey_ThrowsInvalidDataException(string config)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"dup-config-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), config);
            var e = Assert.Throws<InvalidDataException>(() => HuggingFaceModels.Load(folder));
            Assert.Contains("Duplicate", e.Message, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
