using System.Text.Json.Nodes;
using Compression.Quantization;
using Compression.Safetensors;
using Compression.Testing;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Adapters;

/// <summary><see cref="Lora"/> on the real llama-shakespeare-char model (../shared/data): targeting, freezing, merging,
/// QLoRA over packed layers, and PEFT-format files.</summary>
[Collection("TorchSharp")]
public sealed class LoraModelTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"lora-tests-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private static CausalLanguageModel LoadModel() => HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));

    private static Tensor Tokens(int batch = 2, int time = 48, int offset = 1000)
    {
        (int[] train, _) = ShakespeareData.Split();
        return torch.tensor(train.AsSpan(offset, batch * time).ToArray().Select(i => (long)i).ToArray(), [batch, time]);
    }

    private static Tensor Logits(CausalLanguageModel model, Tensor tokens)
    {
        using var noGrad = torch.no_grad();
        return model.call(tokens);
    }

    private static double MaxDifference(Tensor a, Tensor b)
    {
        using Tensor difference = (a - b).abs().max();
        return difference.item<float>();
    }

    /// <summary>Moves every trainable value away from its initialisation, as training would.</summary>
    private static void PerturbTrainable(CausalLanguageModel model, int seed)
    {
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)seed);
        foreach (Parameter parameter in model.parameters().Where(p => p.requires_grad))
        {
            using Tensor noise = torch.randn(parameter.shape, ScalarType.Float32, generator: generator);
            parameter.add_(noise * 0.05);
        }
    }

    [Fact]
    public void Apply_FreezesTheBase_AndReportsTrainableParameters_AsPeftCountsThem()
    {
        using CausalLanguageModel model = LoadModel();
        long before = model.parameters().Sum(p => p.numel());
        using Tensor tokens = Tokens();
        using Tensor original = Logits(model, tokens);
        AdapterReport report = Lora.Apply(model, new LoraOptions { Rank = 8, Alpha = 16 });
        output.WriteLine(report.ToString());
        // q_proj: 384 → 384, v_proj: 384 → 128 (2 KV heads × 64); r·(in + out) each, in 6 layers.
        Assert.Equal(6 * (8 * (384 + 384) + 8 * (384 + 128)), report.TrainableParameters);
        Assert.Equal(before + report.TrainableParameters, report.TotalParameters);
        Assert.Equal(12, report.Modules.Count);
        Assert.Equal("model.layers.0.self_attn.q_proj", report.Modules[0]);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToArray();
        Assert.All(trainable, name => Assert.Matches(@"\.(q|v)_proj\.lora_(A|B)$", name));
        Assert.Contains("model.layers.0.self_attn.q_proj.base_layer.weight", model.named_parameters().Select(p => p.name));
        using Tensor adapted = Logits(model, tokens);
        Assert.True(adapted.eq(original).all().item<bool>(), "B = 0: the adapted model must reproduce the base's logits exactly");
    }

    [Fact]
    public void Apply_WithAnUnknownTarget_IsRefusedWithTheModelsModuleNames()
    {
        using CausalLanguageModel model = LoadModel();
        var e = Assert.Throws<ArgumentException>("options", () => Lora.Apply(model, new LoraOptions { TargetModules = ["q_proj", "query"] }));
        Assert.Contains("'query' matches no linear module", e.Message, StringComparison.Ordinal);
        Assert.Contains("'q_proj'", e.Message, StringComparison.Ordinal);
        Assert.Empty(Lora.AdaptersOf(model));
        Assert.Throws<ArgumentException>("options", () => Lora.Apply(model, new LoraOptions { TargetPattern = "nothing.*" }));
        Assert.Throws<ArgumentException>("options", () => Lora.Apply(model, new LoraOptions { TargetPattern = "(" }));
    }

    [Fact]
    public void Apply_ByRegexOrSuffix_TargetsAsPeftDoes()
    {
        using CausalLanguageModel model = LoadModel();
        AdapterReport byPattern = Lora.Apply(model, new LoraOptions { Rank = 4, TargetPattern = @"model\.layers\.[01]\.mlp\.(gate|up)_proj" });
        Assert.Equal(["model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.1.mlp.gate_proj", "model.layers.1.mlp.up_proj"], byPattern.Modules);
        Assert.Throws<InvalidOperationException>(() => Lora.Apply(model, new LoraOptions()));
        Assert.Equal(4, Lora.Unload(model));
        AdapterReport bySuffix = Lora.Apply(model, new LoraOptions { Rank = 4, TargetModules = ["self_attn.o_proj", "lm_head"] });
        Assert.Equal(7, bySuffix.Modules.Count);
        Assert.Contains("lm_head", bySuffix.Modules);
    }

    [Fact]
    public void Apply_WithARankAboveALayersDimensions_IsRefusedBeforeAnyChange()
    {
        using CausalLanguageModel model = LoadModel();
        // k_proj has 128 outputs; q_proj (384) alone would accept rank 129.
        var e = Assert.Throws<ArgumentException>("options", () => Lora.Apply(model, new LoraOptions { Rank = 129, TargetModules = ["q_proj", "k_proj"] }));
        Assert.Contains("k_proj", e.Message, StringComparison.Ordinal);
        Assert.Contains("min(384, 128)", e.Message, StringComparison.Ordinal);
        Assert.Empty(Lora.AdaptersOf(model));
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MergeAndUnload_GivesPlainLinearLayers_WithTheAdaptedOutputs(bool dora)
    {
        using CausalLanguageModel model = LoadModel();
        using Tensor tokens = Tokens();
        Lora.Apply(model, new LoraOptions { Rank = 8, Alpha = 16, UseDora = dora, TargetModules = ["q_proj", "v_proj", "down_proj"] });
        PerturbTrainable(model, 1);
        using Tensor adapted = Logits(model, tokens);
        foreach ((_, AdapterLinear adapter) in Lora.AdaptersOf(model))
        {
            adapter.Merge();
        }

        using Tensor merged = Logits(model, tokens);
        Assert.Equal(18, Lora.MergeAndUnload(model));
        using Tensor unloaded = Logits(model, tokens);
        Assert.Empty(Lora.AdaptersOf(model));
        Assert.Contains("model.layers.0.self_attn.q_proj.weight", model.named_parameters().Select(p => p.name));
        // Logits of unit scale through 6 layers: merging reorders float32 sums, a few 1e-6 per layer at most.
        output.WriteLine($"merged vs unmerged {MaxDifference(adapted, merged):E2}, unloaded vs unmerged {MaxDifference(adapted, unloaded):E2}");
        Assert.True(MaxDifference(adapted, merged) < 1e-3);
        Assert.True(MaxDifference(adapted, unloaded) < 1e-3);
        Assert.True(merged.eq(unloaded).all().item<bool>());
    }

    [Fact]
    public void Unload_RestoresTheBaseOutputsExactly_EvenAfterAMerge()
    {
        using CausalLanguageModel model = LoadModel();
        using Tensor tokens = Tokens();
        using Tensor original = Logits(model, tokens);
        Lora.Apply(model, new LoraOptions { Rank = 8, TargetModules = ["o_proj", "up_proj"] });
        PerturbTrainable(model, 2);
        Lora.AdaptersOf(model)[0].Adapter.Merge();
        Assert.Equal(12, Lora.Unload(model));
        using Tensor restored = Logits(model, tokens);
        Assert.True(restored.eq(original).all().item<bool>());
    }

    [Fact]
    public void Vera_SharesOneFrozenPair_AndTrainsOnlyRPlusOutValuesPerLayer()
    {
        using CausalLanguageModel model = LoadModel();
        AdapterReport report = Lora.Apply(model, new LoraOptions { Method = AdapterMethod.Vera, Rank = 16, TargetModules = ["q_proj", "v_proj"] });
        output.WriteLine(report.ToString());
        Assert.Equal(6 * ((16 + 384) + (16 + 128)), report.TrainableParameters);
        VeraLinear[] layers = Lora.AdaptersOf(model).Select(a => (VeraLinear)a.Adapter).ToArray();
        VeraProjections shared = layers[0].Projections;
        Assert.All(layers, l => Assert.Same(shared, l.Projections));
        Assert.Equal([16L, 384L], shared.A.shape);
        Assert.Equal([384L, 16L], shared.B.shape);
        Assert.False(shared.A.requires_grad || shared.B.requires_grad);
    }

    [Fact]
    public void QLora_TrainsOnlyTheAdapters_AndLeavesThePackedBaseUnchanged()
    {
        using CausalLanguageModel model = LoadModel();
        QuantizationReport quantized = Quantizer.Apply(model, QuantizerOptions.W4A16 with { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(32) }, Targets = ["*.self_attn.*"] });
        Quantizer.Pack(model, quantized);
        var packed = model.named_modules().Where(m => m.module is QuantizedLinear).DistinctBy(m => m.module).ToDictionary(m => m.name, m => ((QuantizedLinear)m.module).Weight.Decompress());
        Lora.Apply(model, new LoraOptions { Rank = 8, Alpha = 16, TargetModules = ["q_proj", "v_proj"] });
        Assert.All(Lora.AdaptersOf(model), a => Assert.True(a.Adapter.HasQuantizedBase));
        using Tensor tokens = Tokens(2, 65);
        using var optimizer = torch.optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 1e-2);
        model.train();
        var losses = new List<float>();
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            Tensor logits = model.call(tokens[.., ..64]);
            Tensor loss = nn.functional.cross_entropy(logits.reshape(-1, model.VocabularySize), tokens[.., 1..].reshape(-1));
            optimizer.zero_grad();
            loss.backward();
            if (step == 0)
            {
                foreach ((string name, Parameter parameter) in model.named_parameters())
                {
                    bool adapter = name.Contains(".lora_", StringComparison.Ordinal);
                    Assert.True(adapter == parameter.grad is not null, $"{name}: gradient {(parameter.grad is null ? "absent" : "present")}");
                }
            }

            optimizer.step();
            losses.Add(loss.item<float>());
        }

        model.eval();
        output.WriteLine($"QLoRA training losses {string.Join(", ", losses.Select(l => l.ToString("F4")))}");
        Assert.True(losses[^1] < losses[0]);
        foreach ((string name, AdapterLinear adapter) in Lora.AdaptersOf(model))
        {
            Assert.True(((QuantizedLinear)adapter.BaseLayer).Weight.Decompress().BitwiseEquals(packed[name]), $"{name}: packed weight changed");
        }

        foreach ((string name, nn.Module module) in model.named_modules().Where(m => m.module is QuantizedLinear && packed.ContainsKey(m.name)))
        {
            Assert.True(((QuantizedLinear)module).Weight.Decompress().BitwiseEquals(packed[name]), $"{name}: packed weight changed");
        }

        AdapterLinear first = Lora.AdaptersOf(model)[0].Adapter;
        Assert.Contains("quantized", Assert.Throws<InvalidOperationException>(first.Merge).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => Lora.MergeAndUnload(model));
        Assert.Throws<ArgumentException>("options", () =>
        {
            Lora.Unload(model);
            return Lora.Apply(model, new LoraOptions { Initialization = LoraInitialization.Pissa });
        });
    }

    [Fact]
    public void QLora_MergeAndUnload_WithDequantize_KeepsTheAdaptedOutputs()
    {
        using CausalLanguageModel model = LoadModel();
        Quantizer.Pack(model, Quantizer.Apply(model, QuantizerOptions.W4A16 with { Targets = ["*.self_attn.*"] }));
        Lora.Apply(model, new LoraOptions { Rank = 4, TargetModules = ["q_proj"] });
        PerturbTrainable(model, 3);
        using Tensor tokens = Tokens();
        using Tensor adapted = Logits(model, tokens);
        Assert.Equal(6, Lora.MergeAndUnload(model, dequantize: true));
        using Tensor merged = Logits(model, tokens);
        Assert.True(MaxDifference(adapted, merged) < 1e-3);
    }

    public static TheoryData<string> Variants => ["lora", "dora+rslora", "pissa", "vera", "adalora"];

    private static LoraOptions OptionsFor(string variant) => variant switch
    {
        "lora" => new LoraOptions { Rank = 8, Alpha = 16, Dropout = 0.05, TargetModules = ["q_proj", "v_proj"] },
        "dora+rslora" => new LoraOptions { Rank = 4, Alpha = 8, UseDora = true, UseRsLora = true, TargetModules = ["k_proj", "down_proj"] },
        "pissa" => new LoraOptions { Rank = 4, Initialization = LoraInitialization.Pissa, TargetPattern = @".*\.self_attn\.q_proj" },
        "vera" => new LoraOptions { Method = AdapterMethod.Vera, Rank = 16, Seed = 5, TargetModules = ["q_proj", "o_proj"] },
        "adalora" => new LoraOptions { Method = AdapterMethod.AdaLora, Rank = 6, AdaLora = new AdaLoraOptions { TargetRank = 3, TotalSteps = 10, InitialWarmup = 1, FinalWarmup = 2 }, TargetModules = ["v_proj"] },
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void SavedAdapter_ReloadsIntoAFreshModel_WithIdenticalOutputs(string variant)
    {
        using Tensor tokens = Tokens();
        Tensor expected;
        using (CausalLanguageModel model = LoadModel())
        {
            Lora.Apply(model, OptionsFor(variant));
            PerturbTrainable(model, 4);
            if (variant == "adalora")
            {
                // One allocator step past the warm-up masks triplets; the mask travels as rank_pattern.
                AdaLoraRankAllocator allocator = Lora.CreateRankAllocator(model);
                allocator.Step(1);
                allocator.Step(2);
            }

            model.eval();
            expected = Logits(model, tokens);
            Lora.Save(model, _folder);
        }

        using (expected)
        using (CausalLanguageModel fresh = LoadModel())
        {
            AdapterReport report = Lora.Load(fresh, _folder);
            output.WriteLine($"{variant}: {report}");
            fresh.eval();
            using Tensor actual = Logits(fresh, tokens);
            Assert.True(actual.eq(expected).all().item<bool>(), $"{variant}: reloaded logits differ by {MaxDifference(actual, expected)}");
        }
    }

    [Fact]
    public void SavedFiles_UsePeftsNamesShapesAndConfig()
    {
        using (CausalLanguageModel model = LoadModel())
        {
            Lora.Apply(model, new LoraOptions { Rank = 8, Alpha = 16, Dropout = 0.1, TargetModules = ["q_proj", "v_proj"] });
            Lora.Save(model, _folder);
        }

        using (SafetensorsFile file = SafetensorsFile.Open(Path.Combine(_folder, "adapter_model.safetensors")))
        {
            Assert.Equal(24, file.Tensors.Count);
            Assert.Equal([8L, 384L], file.GetInfo("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").Shape);
            Assert.Equal([128L, 8L], file.GetInfo("base_model.model.model.layers.5.self_attn.v_proj.lora_B.weight").Shape);
            Assert.All(file.Tensors, t => Assert.Equal(SafetensorsDType.F32, t.DType));
        }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_folder, "adapter_config.json")))!.AsObject();
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal(8, config["r"]!.GetValue<int>());
        Assert.Equal(16, config["lora_alpha"]!.GetValue<double>());
        Assert.Equal(0.1, config["lora_dropout"]!.GetValue<double>());
        Assert.Equal(["q_proj", "v_proj"], config["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Empty(Directory.GetFiles(_folder, "*.tmp"));
    }

    [Fact]
    public void DyLora_SavesAPlainLoraAtItsActiveRank()
    {
        using Tensor tokens = Tokens();
        Tensor expected;
        using (CausalLanguageModel model = LoadModel())
        {
            Lora.Apply(model, new LoraOptions { Method = AdapterMethod.DyLora, Rank = 8, Alpha = 8, TargetModules = ["q_proj"] });
            PerturbTrainable(model, 6);
            foreach ((_, AdapterLinear adapter) in Lora.AdaptersOf(model))
            {
                ((DyLoraLinear)adapter).ActiveRank = 3;
            }

            model.eval();
            expected = Logits(model, tokens);
            Lora.Save(model, _folder);
        }

        using (expected)
        using (CausalLanguageModel fresh = LoadModel())
        {
            AdapterReport report = Lora.Load(fresh, _folder);
            Assert.All(Lora.AdaptersOf(fresh), a => Assert.Equal(3, ((LoraLinear)a.Adapter).Rank));
            using Tensor actual = Logits(fresh, tokens);
            // Same values, contiguous copies instead of views: summation order may differ by a few ulps.
            Assert.True(MaxDifference(actual, expected) < 1e-4);
        }
    }

    [Fact]
    public void Load_WithWrongShapesOrAnUnknownType_IsRefused_AndLeavesTheModelUnadapted()
    {
        using (CausalLanguageModel model = LoadModel())
        {
            Lora.Apply(model, new LoraOptions { Rank = 4, TargetModules = ["q_proj"] });
            Lora.Save(model, _folder);
        }

        string configPath = Path.Combine(_folder, "adapter_config.json");
        string config = File.ReadAllText(configPath);
        using CausalLanguageModel fresh = LoadModel();
        using Tensor tokens = Tokens();
        using Tensor original = Logits(fresh, tokens);
        File.WriteAllText(configPath, config.Replace("\"r\": 4", "\"r\": 8", StringComparison.Ordinal));
        var e = Assert.Throws<ArgumentException>("folder", () => Lora.Load(fresh, _folder));
        Assert.Contains("has shape [4, 384]", e.Message, StringComparison.Ordinal);
        Assert.Contains("needs [8, 384]", e.Message, StringComparison.Ordinal);
        Assert.Empty(Lora.AdaptersOf(fresh));
        using (Tensor after = Logits(fresh, tokens))
        {
            Assert.True(after.eq(original).all().item<bool>());
        }

        File.WriteAllText(configPath, config.Replace("\"LORA\"", "\"LOHA\"", StringComparison.Ordinal));
        Assert.Contains("peft_type 'LOHA'", Assert.Throws<ArgumentException>("folder", () => Lora.Load(fresh, _folder)).Message, StringComparison.Ordinal);
        File.WriteAllText(configPath, config.Replace("\"q_proj\"", "\"k_proj\"", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>("folder", () => Lora.Load(fresh, _folder));
        Assert.Empty(Lora.AdaptersOf(fresh));
    }
}
