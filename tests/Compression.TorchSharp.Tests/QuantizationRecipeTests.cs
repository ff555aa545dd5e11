using Compression.Quantization;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using Compression.Testing;
using Compression.TorchSharp.Models;

namespace Compression.TorchSharp.Tests;

/// <summary><see cref="QuantizationRecipe"/> (JSON in and out), <see cref="Quantizer"/>'s multi-stage overload on the
/// shakespeare-char Llama model from ../shared/data, and the preset names of <see cref="QuantizerOptions.Preset"/>.</summary>
[Collection("TorchSharp")]
public class QuantizationRecipeTests
{
    /// <summary>The example of docs/models.md ("Recipes").</summary>
    private const string Example = """
        {
          "stages": [
            { "name": "mlp-int4-gptq", "scheme": "W4A16", "method": "gptq",
              "targets": ["re:.*mlp\\..*"], "ignore": ["lm_head"],
              "weights": { "format": "int4", "symmetric": true, "strategy": "group", "group_size": 128 },
              "gptq": { "block_size": 128, "dampening_frac": 0.01, "actorder": true, "static_groups": false },
              "overrides": [ { "targets": ["re:.*down_proj"], "weights": { "format": "int8", "strategy": "channel" } } ] },
            { "name": "attention-fp8", "scheme": "FP8", "targets": ["re:.*self_attn\\..*"] }
          ]
        }
        """;

    [Fact]
    public void FromJson_TheDocumentedExample_GivesTheExpectedOptions()
    {
        QuantizationRecipe recipe = QuantizationRecipe.FromJson(Example);
        Assert.Equal(2, recipe.Stages.Count);

        QuantizationStage mlp = recipe.Stages[0];
        Assert.Equal("mlp-int4-gptq", mlp.Name);
        Assert.Equal(QuantizationMethod.Gptq, mlp.Options.Method);
        Assert.Equal(["re:.*mlp\\..*"], mlp.Options.Targets);
        Assert.Equal(["lm_head"], mlp.Options.Ignore);
        Assert.Same(NumberFormat.Int4, mlp.Options.Quantization.Format);
        Assert.Equal(Granularity.PerGroup(128), mlp.Options.Quantization.Granularity);
        Assert.True(mlp.Options.Quantization.Symmetric);
        Assert.Equal(RtnOptions.W4Group128, mlp.Options.Quantization);
        Assert.Equal(new GptqOptions { BlockSize = 128, DampeningPercent = 0.01, ActOrder = true, StaticGroups = false }, mlp.Options.Gptq);
        KeyValuePair<string, RtnOptions> down = Assert.Single(mlp.Options.Overrides);
        Assert.Equal("re:.*down_proj", down.Key);
        Assert.Equal(RtnOptions.W8PerChannel, down.Value);
        Assert.Equal(RtnOptions.W8PerChannel, mlp.Options.OptionsFor("model.layers.3.mlp.down_proj"));
        Assert.Equal(RtnOptions.W4Group128, mlp.Options.OptionsFor("model.layers.3.mlp.up_proj"));

        QuantizationStage attention = recipe.Stages[1];
        Assert.Equal("attention-fp8", attention.Name);
        Assert.Equal(QuantizationMethod.RoundToNearest, attention.Options.Method);
        Assert.Equal(RtnOptions.Fp8PerChannel, attention.Options.Quantization);
        Assert.Equal(["re:.*self_attn\\..*"], attention.Options.Targets);
        Assert.Equal(["lm_head"], attention.Options.Ignore);                   // the preset's default
        Assert.Empty(attention.Options.Overrides);
    }

    [Fact]
    public void FromJson_ReadsEveryWeightAndGptqField()
    {
        QuantizationRecipe recipe = QuantizationRecipe.FromJson("""
            {
              // comments and trailing commas are accepted
              "stages": [
                { "weights": { "format": "INT3", "symmetric": false, "group_size": 64, "scale_dtype": "bfloat16",
                               "clipping": { "grid": 50 }, "saturate": false },
                  "method": "gptq", "gptq": { "rotation": { "block_size": 32, "sign_seed": 7 }, "dampening_growth": 4,
                                              "max_dampening_attempts": 3 } },
                { "name": "blocks", "weights": { "format": "fp8_e4m3", "strategy": "block", "block_structure": [128, 64],
                                                 "symmetric_range": "full" }, },
                { "name": "mx", "scheme": "w4a16", "weights": { "format": "mxfp4" }, "ignore": [] },
              ]
            }
            """);

        QuantizerOptions first = recipe.Stages[0].Options;
        Assert.Equal("stage-0", recipe.Stages[0].Name);
        Assert.Equal(new RtnOptions
        {
            Format = NumberFormat.Int3, Symmetric = false, Granularity = Granularity.PerGroup(64), ScaleStorage = ScaleEncoding.BFloat16,
            Clipping = ClippingSearch.Default with { Grid = 50 }, Saturate = false,
        }, first.Quantization);
        Assert.Equal(new HadamardRotationParameters(32, 7), first.Gptq.Rotation);
        Assert.Equal(4, first.Gptq.DampeningGrowth);
        Assert.Equal(3, first.Gptq.MaxDampeningAttempts);
        Assert.Equal(RtnOptions.Fp8PerChannel with { Granularity = Granularity.PerBlock(128, 64), SymmetricRange = SymmetricRange.Full },
            recipe.Stages[1].Options.Quantization);
        // A format with fixed blocks replaces the scheme's groups of 128 by its own.
        Assert.Equal(RtnOptions.Mxfp4, recipe.Stages[2].Options.Quantization);
        Assert.Empty(recipe.Stages[2].Options.Ignore);
    }

    [Fact]
    public void ToJson_ThenFromJson_GivesTheSameOptions()
    {
        var recipe = new QuantizationRecipe([
            QuantizationRecipe.FromJson(Example).Stages[0],
            new QuantizationStage("everything", QuantizerOptions.W4A16Asym with
            {
                Method = QuantizationMethod.Gptq,
                Gptq = new GptqOptions { BlockSize = 64, ActOrder = true, StaticGroups = true, Rotation = new HadamardRotationParameters(16) },
                Targets = ["*.mlp.*", "re:model\\.layers\\.[0-2]\\..+"],
                Ignore = ["lm_head", "model.layers.1.mlp.up_proj"],
                Overrides =
                [
                    new("*.down_proj", RtnOptions.Nvfp4),
                    new("*.gate_proj", RtnOptions.W8PerChannel with { Clipping = ClippingSearch.Default, SymmetricRange = SymmetricRange.Full }),
                ],
            }),
            new QuantizationStage("rtn", QuantizerOptions.Fp8A16 with
            {
                Quantization = RtnOptions.Fp8Block128 with { ScaleStorage = ScaleEncoding.Float16, Saturate = false },
                Overrides = [new("lm_head", RtnOptions.W8PerChannel with { Granularity = Granularity.PerTensor })],
            }),
            new QuantizationStage("nf4", QuantizerOptions.W4A16 with { Quantization = RtnOptions.Nf4, Targets = ["Linear"] }),
            new QuantizationStage("w8a8", QuantizerOptions.W8A8Fp8Dynamic with { Quantization = RtnOptions.Fp8PerChannel with { ScaleStorage = ScaleEncoding.BFloat16 } }),
        ]);

        string json = recipe.ToJson();
        QuantizationRecipe back = QuantizationRecipe.FromJson(json);

        Assert.Equal(json, back.ToJson());
        Assert.Equal(recipe.Stages.Count, back.Stages.Count);
        for (int i = 0; i < recipe.Stages.Count; i++)
        {
            QuantizerOptions expected = recipe.Stages[i].Options, actual = back.Stages[i].Options;
            Assert.Equal(recipe.Stages[i].Name, back.Stages[i].Name);
            Assert.Equal(expected.Method, actual.Method);
            Assert.Equal(expected.Quantization, actual.Quantization);
            Assert.Equal(expected.Targets, actual.Targets);
            Assert.Equal(expected.Ignore, actual.Ignore);
            Assert.Equal(expected.Overrides, actual.Overrides);
            Assert.Equal(expected.InputActivations, actual.InputActivations);
            if (expected.Method == QuantizationMethod.Gptq)
            {
                // GptqOptions.Quantization is replaced by each layer's format, so it is not part of the recipe.
                Assert.Equal(expected.Gptq with { Quantization = actual.Gptq.Quantization }, actual.Gptq);
            }
        }
    }

    [Theory]
    [InlineData("""{ "stages": [ { "scheme": "W4A16" }, { "scheme": "W4A16", "weights": { "strategy": "grp" } } ] }""",
        "stages[1].weights.strategy: 'grp' is not tensor, channel, group or block")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "colour": "red" } ] }""", "stages[0].colour: unknown key")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16" } ], "version": 1 }""", "version: unknown key")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "format": "int4", "bits": 4 } } ] }""", "stages[0].weights.bits: unknown key")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "name": "a", "name": "b" } ] }""", "stages[0].name: the key appears twice")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "targets": "Linear" } ] }""", "stages[0].targets: expected a list")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "targets": ["Linear", 3] } ] }""", "stages[0].targets[1]: expected a string")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "group_size": "128" } } ] }""", "stages[0].weights.group_size: expected an integer")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "group_size": 0 } } ] }""", "stages[0].weights.group_size:")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "symmetric": "yes" } } ] }""", "stages[0].weights.symmetric: expected true or false")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "format": "int4x" } } ] }""", "stages[0].weights.format: 'int4x' is not a format")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "format": "int9" } } ] }""", "stages[0].weights.format: 'int9' is not a format")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "strategy": "channel", "group_size": 32 } } ] }""", "stages[0].weights.group_size: a group size needs strategy 'group'")]
    [InlineData("""{ "stages": [ { "scheme": "W8A16", "weights": { "strategy": "group" } } ] }""", "stages[0].weights.strategy: strategy 'group' needs a group_size")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "strategy": "block", "block_structure": [128] } } ] }""", "stages[0].weights.block_structure: expected [rows, columns]")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "symmetric_range": "wide" } } ] }""", "stages[0].weights.symmetric_range: 'wide' is not restricted or full")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "scale_dtype": "float8" } } ] }""", "stages[0].weights.scale_dtype: 'float8' is not float32")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "weights": { "clipping": { "max_shrink": 1.5 } } } ] }""", "stages[0].weights.clipping.max_shrink: MaxShrink must lie in (0, 1)")]
    [InlineData("""{ "stages": [ { "scheme": "MXFP4", "weights": { "strategy": "channel" } } ] }""", "stages[0].weights: mxfp4 uses")]
    [InlineData("""{ "stages": [ { "scheme": "FP8", "weights": { "symmetric": false } } ] }""", "stages[0].weights: fp8-e4m3 is symmetric by definition")]
    [InlineData("""{ "stages": [ { "scheme": "W5A16" } ] }""", "stages[0].scheme: No preset 'W5A16'")]
    [InlineData("""{ "stages": [ { "scheme": "W8A8" } ] }""", "stages[0].scheme: The preset 'W8A8' quantizes activations")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "method": "awq" } ] }""", "stages[0].method: 'awq' is not rtn or gptq")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "gptq": { "actorder": true } } ] }""", "stages[0].gptq: GPTQ settings need \"method\": \"gptq\"")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "method": "gptq", "gptq": { "block_size": 0 } } ] }""", "stages[0].gptq.block_size: BlockSize must be at least 1")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "method": "gptq", "gptq": { "actorder": "static" } } ] }""", "stages[0].gptq.actorder: expected true or false")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "method": "gptq", "gptq": { "rotation": { "block_size": 24 } } } ] }""", "stages[0].gptq.rotation.block_size: BlockSize must be a power of two")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "method": "gptq", "weights": { "strategy": "tensor" } } ] }""", "stages[0].weights: GPTQ updates each output row independently")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "overrides": [ { "targets": ["*.down_proj"] } ] } ] }""", "stages[0].overrides[0]: an override needs 'targets' and 'weights'")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16", "overrides": [ { "targets": ["re:("], "weights": {} } ] } ] }""", "stages[0].overrides[0].targets[0]: 're:(' is not a valid regular expression")]
    [InlineData("""{ "stages": [ { "targets": ["Linear"] } ] }""", "stages[0]: give a 'scheme'")]
    [InlineData("""{ "stages": [ { "name": "a", "scheme": "W4A16" }, { "name": "a", "scheme": "FP8" } ] }""", "stages[1].name: 'a' is already the name of stages[0]")]
    [InlineData("""{ "stages": [] }""", "stages: a recipe needs at least one stage")]
    [InlineData("""{ "stages": {} }""", "stages: expected a list, got an object")]
    [InlineData("""[]""", "recipe: expected an object")]
    [InlineData("""{ "stages": [ { "scheme": "W4A16" ] }""", "The recipe is not valid JSON")]
    public void FromJson_BadInput_NamesTheJsonPath(string json, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => QuantizationRecipe.FromJson(json));
        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal("json", error.ParamName);
    }

    [Fact]
    public void Load_ReadsAFile_AndNamesTheFileInErrors()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        File.WriteAllText(folder.File("good.json"), Example);
        Assert.Equal(QuantizationRecipe.FromJson(Example).ToJson(), QuantizationRecipe.Load(folder.File("good.json")).ToJson());

        File.WriteAllText(folder.File("bad.json"), """{ "stages": [ { "scheme": "W4A16", "weights": { "strategy": "grp" } } ] }""");
        var error = Assert.Throws<InvalidDataException>(() => QuantizationRecipe.Load(folder.File("bad.json")));
        Assert.Contains("bad.json: stages[0].weights.strategy: 'grp'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Recipe_RefusesNoStagesAndDuplicateNames()
    {
        Assert.Throws<ArgumentException>(() => new QuantizationRecipe([]));
        Assert.Throws<ArgumentException>(() => new QuantizationStage(" ", QuantizerOptions.W4A16));
        Assert.Throws<ArgumentNullException>(() => new QuantizationStage("a", null!));
        var twice = Assert.Throws<ArgumentException>(() =>
            new QuantizationRecipe([new QuantizationStage("a", QuantizerOptions.W4A16), new QuantizationStage("a", QuantizerOptions.Fp8A16)]));
        Assert.Contains("'a'", twice.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TwoRtnStages_OnTheLlamaModel_QuantizeEachLayerOnce_AsTheStagesOneAfterAnother()
    {
        // Stage 2 targets every linear layer: the MLP layers of stage 1 must be left alone.
        QuantizationRecipe recipe = QuantizationRecipe.FromJson("""
            { "stages": [
                { "name": "mlp-int4", "targets": ["re:.*mlp\\..*"],
                  "weights": { "format": "int4", "strategy": "group", "group_size": 32 } },
                { "name": "rest-fp8", "scheme": "FP8", "targets": ["Linear"] } ] }
            """);
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        Dictionary<string, float[]> original = Parameters(model);
        var progress = new List<CompressionProgress>();

        QuantizationReport report = Quantizer.Apply(model, recipe, progress: new Recorder(progress));

        // 6 blocks × (gate, up, down) INT4 g32 and × (q, k, v, o) FP8; the head is ignored by both stages.
        Assert.Equal(42, report.Layers.Count);
        Assert.Equal(42, report.Layers.Select(l => l.Name).Distinct().Count());
        Assert.All(report.Layers, l => Assert.Equal(l.Name.Contains(".mlp.", StringComparison.Ordinal) ? "int4 group-32" : "fp8-e4m3 per-channel", l.Format));
        Assert.Equal(18, report.Layers.Count(l => l.Format.StartsWith("int4", StringComparison.Ordinal)));
        string[] modelOrder = Quantizer.LinearLayers(model).Select(l => l.Name).Where(report.Layers.Select(r => r.Name).Contains).ToArray();
        Assert.Equal(modelOrder, report.Layers.Select(l => l.Name));
        Assert.Equal(Enumerable.Range(1, 42).Select(i => (long)i), progress.Select(p => p.Completed));
        Assert.All(progress, p => Assert.Equal(42, p.Total));
        Assert.Equal(["mlp-int4", "rest-fp8"], progress.Select(p => p.Stage).Distinct());

        // INT4 with groups of 32: at most 16 distinct values in every group of every MLP row.
        Dictionary<string, float[]> after = Parameters(model);
        foreach (LayerQuantization layer in report.Layers.Where(l => l.Format.StartsWith("int4", StringComparison.Ordinal)))
        {
            float[] w = after[layer.Name + ".weight"];
            for (int start = 0; start < w.Length; start += 32)
            {
                Assert.True(w.AsSpan(start, 32).ToArray().Distinct().Count() <= 16, $"{layer.Name}: a group of 32 holds more than 16 values");
            }
        }

        // FP8 layers are exactly round-to-nearest FP8 per channel of the original weight.
        (_, int rows, int columns) = Quantizer.LinearLayers(model).Single(l => l.Name == "model.layers.0.self_attn.q_proj");
        var q0 = new DenseTensor(original["model.layers.0.self_attn.q_proj.weight"], rows, columns);
        Assert.Equal(RtnOptions.Fp8PerChannel.CreateCompressor().Quantize(q0).Decompress().Span.ToArray(), after["model.layers.0.self_attn.q_proj.weight"]);

        // Everything outside both stages is untouched: embeddings, norms, the head.
        var quantized = report.Layers.Select(l => l.Name + ".weight").ToHashSet();
        foreach ((string name, float[] values) in original.Where(p => !quantized.Contains(p.Key)))
        {
            Assert.Equal(values, after[name]);
        }

        // The same as the two stages one after another through the single-stage Apply, bit for bit.
        using CausalLanguageModel sequential = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        QuantizationReport first = Quantizer.Apply(sequential, recipe.Stages[0].Options);
        QuantizationReport second = Quantizer.Apply(sequential, recipe.Stages[1].Options with { Ignore = ["lm_head", "re:.*mlp\\..*"] });
        Dictionary<string, float[]> expected = Parameters(sequential);
        Assert.Equal(expected.Keys, after.Keys);
        foreach ((string name, float[] values) in expected)
        {
            Assert.Equal(values, after[name]);
        }

        Assert.Equal(first.Layers.Concat(second.Layers).Select(l => (l.Name, l.Format, l.BitsPerWeight)).Order(),
            report.Layers.Select(l => (l.Name, l.Format, l.BitsPerWeight)).Order());

        // Sizes: every parameter at 16 bits before; each quantized weight at its bits per weight after.
        long parameters = original.Values.Sum(v => (long)v.Length);
        Assert.Equal(16 * parameters, report.OriginalBits);
        Assert.Equal(first.OriginalBits, report.OriginalBits);
        long expectedBits = original.Sum(p => report.Layers.FirstOrDefault(l => l.Name + ".weight" == p.Key) is { } l
            ? (long)Math.Ceiling(l.BitsPerWeight * p.Value.Length)
            : 16L * p.Value.Length);
        Assert.Equal(expectedBits, report.CompressedBits);
        Assert.True(report.CompressionRatio > 1);
    }

    [Fact]
    public void Apply_SkipsAStageWhoseLayersAreTaken_AndChecksEveryStageBeforeChangingAWeight()
    {
        using CausalLanguageModel model = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        Dictionary<string, float[]> original = Parameters(model);

        // A later stage whose pattern matches no linear layer: refused with the stage's name, and nothing changed.
        var typo = new QuantizationRecipe([
            new QuantizationStage("int8", QuantizerOptions.W8A16),
            new QuantizationStage("typo", QuantizerOptions.Fp8A16 with { Targets = ["*.mlp.gate_projj"] }),
        ]);
        var error = Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, typo));
        Assert.Contains("Stage 'typo'", error.Message, StringComparison.Ordinal);
        Assert.Contains("gate_projj", error.Message, StringComparison.Ordinal);
        AssertUnchanged(original, model);

        // A later GPTQ stage without calibration, and a format that does not fit a layer: refused before stage 1 runs.
        var gptq = new QuantizationRecipe([
            new QuantizationStage("int8", QuantizerOptions.W8A16 with { Targets = ["*.mlp.*"] }),
            new QuantizationStage("gptq", QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq }),
        ]);
        Assert.Equal("calibration", Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, gptq)).ParamName);
        Assert.Equal("calibration", Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, gptq, [[1, 2, 1 << 20]])).ParamName);
        var tooWide = new QuantizationRecipe([
            new QuantizationStage("int8", QuantizerOptions.W8A16 with { Targets = ["*.mlp.*"] }),
            new QuantizationStage("wide", QuantizerOptions.W4A16 with { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(4096) } }),
        ]);
        Assert.Contains("Stage 'wide', layer", Assert.Throws<ArgumentException>(() => Quantizer.Apply(model, tooWide)).Message, StringComparison.Ordinal);
        AssertUnchanged(original, model);

        // A stage whose targets were all quantized by an earlier stage is skipped, not an error.
        var covered = new QuantizationRecipe([
            new QuantizationStage("all", QuantizerOptions.W8A16),
            new QuantizationStage("mlp", QuantizerOptions.Fp8A16 with { Targets = ["*.mlp.*"] }),
        ]);
        QuantizationReport report = Quantizer.Apply(model, covered);
        Assert.All(report.Layers, l => Assert.StartsWith("int8", l.Format, StringComparison.Ordinal));
        Assert.Equal(Quantizer.LinearLayers(model).Count(l => l.Name != "lm_head"), report.Layers.Count);   // the head is ignored (or tied)
    }

    [Theory]
    [InlineData("W8A16", "W8A16")]
    [InlineData("w4a16", "W4A16")]
    [InlineData("W4A16_ASYM", "W4A16Asym")]
    [InlineData("w4a16-asym", "W4A16Asym")]
    [InlineData("W3A16", "W3A16")]
    [InlineData("FP8", "Fp8A16")]
    [InlineData("fp8a16", "Fp8A16")]
    [InlineData("MXFP4", "Mxfp4A16")]
    [InlineData("MxFp4A16", "Mxfp4A16")]
    [InlineData("nvfp4", "Nvfp4A16")]
    [InlineData("NVFP4A16", "Nvfp4A16")]
    public void Preset_AcceptsTheNamesUsersKnow(string name, string property)
    {
        object expected = typeof(QuantizerOptions).GetProperty(property)!.GetValue(null)!;
        Assert.Same(expected, QuantizerOptions.Preset(name));
    }

    [Fact]
    public void Preset_W4A16Asym_IsInt4Group128WithZeroPoints()
    {
        RtnOptions asym = QuantizerOptions.Preset("W4A16_ASYM").Quantization;
        Assert.Same(NumberFormat.Int4, asym.Format);
        Assert.Equal(Granularity.PerGroup(128), asym.Granularity);
        Assert.False(asym.Symmetric);
    }

    [Theory]
    [InlineData("W8A8")]
    [InlineData("W4A8")]
    [InlineData("W4A4")]
    [InlineData("INT8")]
    [InlineData("W4AFP8")]
    [InlineData("FP8_BLOCK")]
    [InlineData("w8a8_int8")]
    [InlineData("NVFP4A4")]
    public void Preset_UnsupportedActivationSchemes_AreRefused(string name)
    {
        var error = Assert.Throws<ArgumentException>(() => QuantizerOptions.Preset(name));
        Assert.Equal("name", error.ParamName);
        Assert.Contains("activations", error.Message, StringComparison.Ordinal);
        Assert.Contains("FP8_DYNAMIC", error.Message, StringComparison.Ordinal);
        Assert.Contains("FP8A16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Preset_UnknownName_ListsThePresets()
    {
        var error = Assert.Throws<ArgumentException>(() => QuantizerOptions.Preset("W5A16"));
        Assert.Contains("No preset 'W5A16'", error.Message, StringComparison.Ordinal);
        Assert.Contains("W4A16_ASYM", error.Message, StringComparison.Ordinal);
    }

    private static Dictionary<string, float[]> Parameters(CausalLanguageModel model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.ToDenseTensor().Span.ToArray());

    private static void AssertUnchanged(Dictionary<string, float[]> original, CausalLanguageModel model)
    {
        foreach ((string name, float[] values) in Parameters(model))
        {
            Assert.Equal(original[name], values);
        }
    }
}
