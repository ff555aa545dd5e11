using Compression.LowRank;
using Compression.Pruning;
using Compression.Quantization;
using Compression.Testing;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary>
/// The TorchSharp rows of the bad-input matrix (docs/reliability.md) that no other test covers, on TinyStories-656K
/// from ../shared/data: each bad input gives the documented exception type, naming the parameter (argument errors) or
/// carrying the detail that says what was wrong (file errors), and a refused model keeps every weight bit for bit.
/// </summary>
[Collection("TorchSharp")]
public class BadInputTests
{
    private const string Layer = "model.layers.1.mlp.down_proj";

    /// <summary>(what is wrong, the call, the exception type expected exactly, its ParamName or null, a fragment of its message).</summary>
    public static TheoryData<string, Action<CausalLanguageModel>, Type, string?, string> Cases => new()
    {
        // Model-level compression: a NaN weight is named by layer and position, before any layer changes.
        { "quantize: NaN weight", m => Quantizer.Apply(Poison(m), QuantizerOptions.W8A16), typeof(ArgumentException), "weight", Layer + "): the weight holds NaN at (3, 7)" },
        { "quantize (GPTQ): NaN weight", m => Quantizer.Apply(Poison(m), Gptq, Calibration()), typeof(ArgumentException), "weight", Layer + "): the weight holds NaN at (3, 7)" },
        { "quantize: negative calibration id", m => Quantizer.Apply(m, Gptq, [[1, -5, 2]]), typeof(ArgumentException), "calibration", "-5" },
        { "quantize: null calibration", m => Quantizer.Apply(m, Gptq, null!), typeof(ArgumentNullException), "calibration", "calibration" },
        { "prune: NaN weight", m => Pruner.Apply(Poison(m), Magnitude), typeof(ArgumentException), "weight", Layer + "): the weight holds NaN at (3, 7)" },
        { "prune: calibration id outside the vocabulary", m => Pruner.Apply(m, SparseGpt, [[1, 2, 999_999]]), typeof(ArgumentException), "calibration", "999999" },
        { "prune: calibration longer than the context", m => Pruner.Apply(m, SparseGpt, [new int[m.ContextLength + 1]]), typeof(ArgumentException), "calibration", "513 tokens" },
        { "prune: empty calibration sequence", m => Pruner.Apply(m, SparseGpt, [[1, 2], []]), typeof(ArgumentException), "calibration", "1" },
        { "factorize: NaN weight", m => Factorizer.Apply(Poison(m), new FactorizerOptions()), typeof(ArgumentException), "weight", Layer + "): the weight holds NaN at (3, 7)" },
        { "factorize: calibration id outside the vocabulary", m => Factorizer.Apply(m, Whitened, [[1, 2, 999_999]]), typeof(ArgumentException), "calibration", "999999" },
        { "factorize: no calibration for whitening", m => Factorizer.Apply(m, Whitened, []), typeof(ArgumentException), "calibration", "calibration" },

        // Evaluation.
        { "evaluate: no tokens", m => LanguageModelEvaluator.Evaluate(m, [], window: 8), typeof(ArgumentException), "tokens", "8" },
        { "evaluate: negative id", m => LanguageModelEvaluator.Evaluate(m, [1, -2, 3, 4], window: 2), typeof(ArgumentException), "tokens", "-2" },
        { "evaluate: window 0", m => LanguageModelEvaluator.Evaluate(m, [1, 2, 3], window: 0), typeof(ArgumentException), "window", "got 0" },
        { "evaluate: batch size 0", m => LanguageModelEvaluator.Evaluate(m, [1, 2, 3], window: 2, batchSize: 0), typeof(ArgumentOutOfRangeException), "batchSize", "0" },
        { "evaluate: BOS outside the vocabulary", m => LanguageModelEvaluator.EvaluateWithBos(m, [1, 2, 3, 4], window: 2, bos: m.VocabularySize), typeof(ArgumentException), "bos", "vocabulary" },

        // Adapters.
        { "LoRA load: missing folder", m => Lora.Load(m, Path.Combine(Path.GetTempPath(), "no-such-adapter-" + Guid.NewGuid().ToString("N"))), typeof(FileNotFoundException), null, "adapter_config.json" },
        { "LoRA load: adapter_config.json not JSON", m => WithFolder(f => { File.WriteAllText(Path.Combine(f, "adapter_config.json"), "{\"r\": "); File.WriteAllBytes(Path.Combine(f, "adapter_model.safetensors"), []); Lora.Load(m, f); }), typeof(InvalidDataException), null, "adapter_config.json" },
        { "LoRA apply: NaN alpha", m => Lora.Apply(m, new LoraOptions { Alpha = double.NaN }), typeof(ArgumentOutOfRangeException), "Alpha", "NaN" },
    };

    private static readonly QuantizerOptions Gptq = QuantizerOptions.W8A16 with { Method = QuantizationMethod.Gptq };

    private static readonly PrunerOptions Magnitude = new(new MagnitudePruningOptions { Sparsity = 0.5 }.CreateCompressor());

    private static readonly PrunerOptions SparseGpt = new(SparseGptOptions.Unstructured50.CreateCompressor());

    private static readonly FactorizerOptions Whitened = new() { LowRank = new LowRankOptions { Whitening = ActivationWhitening.Eigen } };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInput_IsRefused_WithTheDocumentedException(string why, Action<CausalLanguageModel> call, Type expected, string? parameter, string detail)
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        BadInput.AssertRefused(why, () => call(model), expected, parameter, detail);
    }

    public static TheoryData<string> ModelFileCases => new(["no config.json", "no weights", "truncated weights", "tensor missing", "tensor of the wrong shape", "config not JSON", "unknown architecture"]);

    [Theory]
    [MemberData(nameof(ModelFileCases))]
    public void DamagedModelFolder_IsRefused_WithAFileException(string damage)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        foreach (string file in Directory.GetFiles(SharedData.File("tinystories-656k")))
        {
            File.Copy(file, folder.File(Path.GetFileName(file)));
        }

        string weights = folder.File("model.safetensors"), config = folder.File("config.json");
        (Type expected, string detail) = damage switch
        {
            "no config.json" => Do(() => File.Delete(config), typeof(FileNotFoundException), "config.json"),
            "no weights" => Do(() => File.Delete(weights), typeof(FileNotFoundException), "safetensors"),
            "truncated weights" => Do(() => File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..^100]), typeof(InvalidDataException), "model.safetensors"),
            "tensor missing" => Do(() => Rewrite(weights, drop: "model.layers.0.mlp.up_proj.weight"), typeof(InvalidDataException), "model.layers.0.mlp.up_proj.weight"),
            "tensor of the wrong shape" => Do(() => Rewrite(weights, transpose: "model.layers.0.mlp.up_proj.weight"), typeof(InvalidDataException), "model.layers.0.mlp.up_proj.weight"),
            "config not JSON" => Do(() => File.WriteAllText(config, "{\"architectures\": ["), typeof(InvalidDataException), "config.json"),
            _ => Do(() => File.WriteAllText(config, """{"architectures": ["MambaForCausalLM"]}"""), typeof(NotSupportedException), "MambaForCausalLM"),
        };
        Exception e = Assert.Throws(expected, () => HuggingFaceModels.Load(folder.Path).Dispose());
        Assert.True(e.Message.Contains(detail, StringComparison.Ordinal), $"{damage}: the message '{e.Message}' does not say '{detail}'");
    }

    public static TheoryData<string> Llama2CFileCases => new(["missing", "empty", "header only"]);

    [Theory]
    [MemberData(nameof(Llama2CFileCases))]
    public void DamagedLlama2CFile_IsRefused_WithAFileException(string damage)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string path = folder.File("model.bin");
        if (damage == "empty")
        {
            File.WriteAllBytes(path, []);
        }
        else if (damage == "header only")
        {
            // dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512, context 512, and no weights at all.
            File.WriteAllBytes(path, new[] { 64, 172, 5, 8, 4, 512, 512 }.SelectMany(BitConverter.GetBytes).ToArray());
        }

        Type expected = damage == "missing" ? typeof(FileNotFoundException) : typeof(InvalidDataException);
        Exception e = Assert.Throws(expected, () => Llama2CModels.Load(path).Dispose());
        Assert.Contains("model.bin", e.Message, StringComparison.Ordinal);
    }

    // Factorizer checks every targeted weight first; Quantizer.Apply and Pruner.Apply go layer by layer and restore the
    // layers they had already changed (WeightRollback) when a later one is refused.
    [Theory]
    [InlineData("factorize")]
    [InlineData("quantize")]
    [InlineData("prune")]
    public void RefusedModel_KeepsEveryWeightBitForBit(string entryPoint)
    {
        // The NaN is in layer 1, so a run that went layer by layer would have changed layer 0 before refusing.
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        Poison(model);
        Dictionary<string, float[]> before = Snapshot(model);
        Action apply = entryPoint switch
        {
            "quantize" => () => Quantizer.Apply(model, QuantizerOptions.W8A16),
            "prune" => () => Pruner.Apply(model, Magnitude),
            _ => () => Factorizer.Apply(model, new FactorizerOptions()),
        };
        Assert.Throws<ArgumentException>(apply);
        Dictionary<string, float[]> after = Snapshot(model);
        Assert.Equal(before.Keys, after.Keys);
        foreach ((string name, float[] values) in before)
        {
            Assert.True(values.Select(BitConverter.SingleToInt32Bits).SequenceEqual(after[name].Select(BitConverter.SingleToInt32Bits)), $"{entryPoint}: {name} changed");
        }

        Assert.All(model.named_modules().Where(m => m.name.EndsWith("_proj", StringComparison.Ordinal)),
            m => Assert.IsType<global::TorchSharp.Modules.Linear>(m.module));
    }

    private static (Type, string) Do(Action damage, Type expected, string detail)
    {
        damage();
        return (expected, detail);
    }

    private static void Rewrite(string path, string? drop = null, string? transpose = null)
    {
        var writer = new Safetensors.SafetensorsWriter();
        using (Safetensors.SafetensorsFile file = Safetensors.SafetensorsFile.Open(path))
        {
            foreach (Safetensors.SafetensorsTensorInfo info in file.Tensors)
            {
                if (info.Name == drop)
                {
                    continue;
                }

                Tensors.DenseTensor t = file.ReadDense(info.Name);
                writer.Add(info.Name, info.Name == transpose ? t.Transpose() : t);
            }
        }

        writer.Save(path);
    }

    private static void WithFolder(Action<string> body)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        body(folder.Path);
    }

    private static IReadOnlyList<int[]> Calibration() => [[1, 200, 300, 400, 500, 600, 700, 800], [1, 50, 60, 70, 80, 90, 100, 110]];

    private static CausalLanguageModel Poison(CausalLanguageModel model)
    {
        using (no_grad())
        {
            Tensor weight = model.named_parameters().Single(p => p.name == Layer + ".weight").parameter;
            weight[3, 7] = tensor(float.NaN);
        }

        return model;
    }

    private static Dictionary<string, float[]> Snapshot(CausalLanguageModel model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().cpu().contiguous().data<float>().ToArray());
}
