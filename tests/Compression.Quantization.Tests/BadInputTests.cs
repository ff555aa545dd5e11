using System.Text;
using Compression.Calibration;
using Compression.Gpu.Runtime;
using Compression.Quantization.Checkpoints;
using Compression.Quantization.Gpu;
using Compression.Safetensors;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>
/// The Quantization rows of the bad-input matrix (docs/reliability.md) that no other test covers: each bad input gives the
/// documented exception type, naming the parameter (argument errors) or carrying the detail that says what was wrong
/// (file errors); valid edge cases (empty matrices, all-zero rows, dead input features) give finite results.
/// </summary>
public class BadInputTests
{
    private static readonly DenseTensor Good = RandomData.GaussianMatrix(4, 32, seed: 1);

    /// <summary>(what is wrong, the call, the exception type expected exactly, its ParamName or null, a fragment of its message).</summary>
    public static TheoryData<string, Action, Type, string?, string> Cases => new()
    {
        // Round to nearest.
        { "RTN: NaN weight", () => RtnOptions.W8PerChannel.CreateCompressor().Quantize(WithValue(float.NaN)), typeof(ArgumentException), "weight", "NaN at (2, 5)" },
        { "RTN: -Inf weight", () => RtnOptions.Nvfp4.CreateCompressor().Quantize(WithValue(float.NegativeInfinity)), typeof(ArgumentException), "weight", "-Infinity at (2, 5)" },
        { "RTN: rank-3 weight", () => RtnOptions.W8PerChannel.CreateCompressor().Quantize(new DenseTensor(2, 4, 32)), typeof(ArgumentException), "weight", "[2, 4, 32]" },
        { "RTN: rank-1 weight", () => RtnOptions.W8PerChannel.CreateCompressor().Compress(new DenseTensor(32), CompressionContext.Default), typeof(ArgumentException), "weight", "[32]" },
        { "RTN: group size not dividing the columns", () => RtnOptions.W4Group128.CreateCompressor().Quantize(Good), typeof(ArgumentException), "Granularity", "32" },
        { "RTN: null weight", () => RtnOptions.W8PerChannel.CreateCompressor().Quantize(null!), typeof(ArgumentNullException), "weight", "weight" },
        { "RTN: clipping grid of 0", () => _ = new ClippingSearch { Grid = 0 }, typeof(ArgumentOutOfRangeException), "Grid", "0" },
        { "RTN: clipping norm NaN", () => _ = new ClippingSearch { Norm = double.NaN }, typeof(ArgumentOutOfRangeException), "Norm", "NaN" },
        { "RTN: unknown format name", () => NumberFormat.FromName("int17"), typeof(ArgumentException), "name", "17 bits" },
        { "RTN: block granularity with a zero side", () => Granularity.PerBlock(0, 128), typeof(ArgumentOutOfRangeException), "rows", "0" },
        { "trit planes: NaN weight", () => TritPlaneOptions.Default.CreateCompressor().Compress(WithValue(float.NaN), CompressionContext.Default), typeof(ArgumentException), "weight", "NaN at (2, 5)" },
        { "trit planes: rank-3 weight", () => TritPlaneOptions.Default.CreateCompressor().Compress(new DenseTensor(2, 2, 2), CompressionContext.Default), typeof(ArgumentException), "weight", "[2, 2, 2]" },
        { "trit planes: planes above the maximum", () => _ = new TritPlaneOptions { Planes = 99 }, typeof(ArgumentOutOfRangeException), "Planes", "99" },

        // GPTQ (CPU and the GPU engine on ILGPU's CPU simulator).
        { "GPTQ: NaN weight", () => Gptq().Quantize(WithValue(float.NaN), Hessian(32)), typeof(ArgumentException), "weight", "NaN at (2, 5)" },
        { "GPTQ: +Inf weight", () => Gptq().Quantize(WithValue(float.PositiveInfinity), Hessian(32)), typeof(ArgumentException), "weight", "Infinity at (2, 5)" },
        { "GPTQ: no Hessian", () => Gptq().Quantize(Good, CompressionContext.Default), typeof(ArgumentException), "context", "Hessian" },
        { "GPTQ: Hessian narrower than the weight", () => Gptq().Quantize(Good, Hessian(16)), typeof(ArgumentException), "context", "32 columns" },
        { "GPTQ: Hessian that has seen no samples", () => Gptq().Quantize(Good, new CompressionContext { InputHessian = new HessianAccumulator(32) }), typeof(ArgumentException), "context", "no samples" },
        { "GPTQ: rank-3 weight", () => Gptq().Quantize(new DenseTensor(2, 2, 32), Hessian(32)), typeof(ArgumentException), "weight", "[2, 2, 32]" },
        { "GPTQ: block size above the maximum", () => _ = new GptqOptions { BlockSize = -4 }, typeof(ArgumentOutOfRangeException), "BlockSize", "-4" },
        { "GPTQ: dampening NaN", () => _ = new GptqOptions { DampeningPercent = double.NaN }, typeof(ArgumentOutOfRangeException), "DampeningPercent", "NaN" },
        { "GPU GPTQ: NaN weight", () => WithGpu(gpu => new GpuGptqQuantizer(gpu, GptqOptions.W8PerChannel).Compress(WithValue(float.NaN), Hessian(32))), typeof(ArgumentException), "weight", "NaN at (2, 5)" },
        { "GPU GPTQ: no Hessian", () => WithGpu(gpu => new GpuGptqQuantizer(gpu, GptqOptions.W8PerChannel).Compress(Good, CompressionContext.Default)), typeof(ArgumentException), "context", "Hessian" },
        { "GPU GPTQ: Hessian of the wrong size", () => WithGpu(gpu => new GpuGptqQuantizer(gpu, GptqOptions.W8PerChannel).Compress(Good, Hessian(8))), typeof(ArgumentException), "context", "32 columns" },
        { "GPU RTN: rank-3 weight", () => WithGpu(gpu => new GpuRoundToNearestQuantizer(gpu, RtnOptions.W8PerChannel).Quantize(new DenseTensor(2, 2, 32))), typeof(ArgumentException), "weight", "[2, 2, 32]" },

        // Checkpoint quantization without a model (a synthetic Hugging Face folder).
        { "checkpoint: missing input folder", () => WithCheckpoint((input, output) => CheckpointQuantizer.Quantize(Path.Combine(input, "absent"), output, QuantizerOptions.W8A16)), typeof(FileNotFoundException), null, "config.json" },
        { "checkpoint: no model.safetensors", () => WithCheckpoint((input, output) => { File.Delete(Path.Combine(input, "model.safetensors")); CheckpointQuantizer.Quantize(input, output, QuantizerOptions.W8A16); }), typeof(FileNotFoundException), null, "safetensors" },
        { "checkpoint: truncated model.safetensors", () => WithCheckpoint((input, output) => { Truncate(Path.Combine(input, "model.safetensors"), 40); CheckpointQuantizer.Quantize(input, output, QuantizerOptions.W8A16); }), typeof(InvalidDataException), null, "model.safetensors" },
        { "checkpoint: config.json not JSON", () => WithCheckpoint((input, output) => { File.WriteAllText(Path.Combine(input, "config.json"), "{\"model_type\": "); CheckpointQuantizer.Quantize(input, output, QuantizerOptions.W8A16); }), typeof(InvalidDataException), null, "config.json" },
        { "checkpoint: config.json an array", () => WithCheckpoint((input, output) => { File.WriteAllText(Path.Combine(input, "config.json"), "[]"); CheckpointQuantizer.Quantize(input, output, QuantizerOptions.W8A16); }), typeof(InvalidDataException), null, "config.json" },
        { "checkpoint: already quantized", () => WithCheckpoint((input, output) => { File.WriteAllText(Path.Combine(input, "config.json"), "{\"quantization_config\": {}}"); CheckpointQuantizer.Quantize(input, output, QuantizerOptions.W8A16); }), typeof(ArgumentException), "inputFolder", "quantization_config" },
        { "checkpoint: output is the input", () => WithCheckpoint((input, _) => CheckpointQuantizer.Quantize(input, input + Path.DirectorySeparatorChar, QuantizerOptions.W8A16)), typeof(ArgumentException), "outputFolder", "differ" },
        { "checkpoint: GPTQ asked for", () => WithCheckpoint((input, output) => CheckpointQuantizer.Quantize(input, output, QuantizerOptions.W8A16 with { Method = QuantizationMethod.Gptq })), typeof(ArgumentException), "options", "GPTQ" },
        { "checkpoint: target matching no layer", () => WithCheckpoint((input, output) => CheckpointQuantizer.Quantize(input, output, QuantizerOptions.W8A16 with { Targets = ["*.no_such_proj"] })), typeof(ArgumentException), "options", "no_such_proj" },
        { "checkpoint: group size not dividing a layer", () => WithCheckpoint((input, output) => CheckpointQuantizer.Quantize(input, output, QuantizerOptions.W4A16)), typeof(ArgumentException), "Granularity", "32" },
        { "presets: unknown name", () => QuantizerOptions.Preset("W5A16"), typeof(ArgumentException), "name", "W5A16" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInput_IsRefused_WithTheDocumentedException(string why, Action call, Type expected, string? parameter, string detail) =>
        BadInput.AssertRefused(why, call, expected, parameter, detail);

    [Fact]
    public void NaNInACheckpointWeight_IsRefusedNamingTheModule()
    {
        // CheckpointQuantizer passes the module as CompressionContext.LayerName, which the quantizer's message carries.
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        WriteCheckpoint(folder.File("in"), poison: true);
        ArgumentException e = Assert.Throws<ArgumentException>(() => CheckpointQuantizer.Quantize(folder.File("in"), folder.File("out"), QuantizerOptions.W8A16));
        Assert.Equal("weight", e.ParamName);
        Assert.Contains("(model.layers.0.mlp.down_proj): the weight holds NaN at (1, 3)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigWithAByteOrderMark_IsRead()
    {
        // A config.json saved with a UTF-8 byte order mark (some Windows editors write one) was reported as "'0xEF' is an
        // invalid start of a value"; the mark is skipped now, as File.ReadAllText skips it.
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string input = folder.File("in");
        WriteCheckpoint(input, poison: false);
        File.WriteAllText(Path.Combine(input, "config.json"), """{"model_type": "llama"}""", new UTF8Encoding(encoderShouldEmitUTF8Identifier: true));
        CheckpointQuantizationResult result = CheckpointQuantizer.Quantize(input, folder.File("out"), QuantizerOptions.W8A16);
        Assert.NotEmpty(result.Modules);
        Assert.True(File.Exists(Path.Combine(folder.File("out"), "config.json")));
    }

    [Fact]
    public void RefusedCheckpoint_WritesNothing_AndLeavesTheInputUntouched()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string input = folder.File("in"), output = folder.File("out");
        WriteCheckpoint(input, poison: true);
        byte[] before = File.ReadAllBytes(Path.Combine(input, "model.safetensors"));
        Assert.Throws<ArgumentException>(() => CheckpointQuantizer.Quantize(input, output, QuantizerOptions.W8A16));
        Assert.False(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(output, "config.json")));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(input, "model.safetensors")));
    }

    public static TheoryData<string> AllFormats => new(NumberFormat.All.Select(f => f.Name));

    [Theory]
    [MemberData(nameof(AllFormats))]
    public void AllZeroRowsAndEmptyMatrices_QuantizeToFiniteZeros(string format)
    {
        // A row of zeros has amax 0: the scale must not become 0/0. Rows of zeros are common (dead output channels,
        // pruned rows), so they are valid input, not an error.
        var rtn = new RtnOptions { Format = NumberFormat.FromName(format) };
        DenseTensor w = RandomData.GaussianMatrix(4, 64, seed: 2);
        w.Row(1).Clear();
        w.Row(3).Clear();
        QuantizedTensor q = rtn.CreateCompressor().Quantize(w);
        Assert.All(q.Scales.ToArray(), s => Assert.True(float.IsFinite(s), $"{format}: scale {s}"));
        DenseTensor back = q.Decompress();
        Assert.All(back.Span.ToArray(), v => Assert.True(float.IsFinite(v), $"{format}: value {v}"));
        Assert.All(back.Row(1).ToArray(), v => Assert.Equal(0f, v));
        Assert.All(back.Row(3).ToArray(), v => Assert.Equal(0f, v));

        QuantizedTensor empty = rtn.CreateCompressor().Quantize(new DenseTensor(0, 64));
        Assert.Equal((0, 64), (empty.Rows, empty.Columns));
    }

    [Fact]
    public void Gptq_DeadInputFeatures_AndAllZeroWeights_GiveFiniteResults()
    {
        // Columns whose activations are always zero make H singular (zero rows and columns); GPTQ's dampening and its
        // dead-column rule must still give a finite result, and an all-zero weight must quantize to zeros.
        var hessian = new HessianAccumulator(32);
        DenseTensor x = RandomData.GaussianMatrix(64, 32, seed: 3);
        for (int r = 0; r < x.Rows; r++)
        {
            x[r, 7] = 0;
            x[r, 20] = 0;
        }

        hessian.Add(x);
        var context = new CompressionContext { InputHessian = hessian };
        DenseTensor q = Gptq().Quantize(Good, context).Decompress();
        Assert.All(q.Span.ToArray(), v => Assert.True(float.IsFinite(v)));
        DenseTensor zeros = Gptq().Quantize(new DenseTensor(4, 32), context).Decompress();
        Assert.All(zeros.Span.ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(0, Gptq().Quantize(new DenseTensor(0, 32), context).Rows);
    }

    [Fact]
    public void RefusedWeight_IsLeftUntouched()
    {
        DenseTensor poisoned = WithValue(float.NaN);
        int[] before = poisoned.Span.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
        Assert.Throws<ArgumentException>(() => Gptq().Quantize(poisoned, Hessian(32)));
        Assert.Throws<ArgumentException>(() => RtnOptions.W8PerChannel.CreateCompressor().Quantize(poisoned));
        Assert.Equal(before, poisoned.Span.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray());
    }

    private static GptqQuantizer Gptq() => new(GptqOptions.W8PerChannel);

    private static CompressionContext Hessian(int columns) => new() { InputHessian = RandomData.CorrelatedHessian(columns, 64, seed: 4) };

    private static DenseTensor WithValue(float value) => BadInput.WithValueAt25(Good, value);

    private static void WithGpu(Action<GpuContext> body)
    {
        using GpuContext gpu = GpuContext.CreateCpuSimulator();
        body(gpu);
    }

    private static void Truncate(string path, int length)
    {
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..length]);
    }

    private static void WriteCheckpoint(string folder, bool poison)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}""");
        var writer = new SafetensorsWriter();
        writer.Add("model.embed_tokens.weight", RandomData.GaussianMatrix(16, 32, seed: 5));
        writer.Add("model.layers.0.mlp.up_proj.weight", RandomData.GaussianMatrix(8, 32, seed: 6));
        DenseTensor down = RandomData.GaussianMatrix(32, 8, seed: 7);
        if (poison)
        {
            down[1, 3] = float.NaN;
        }

        writer.Add("model.layers.0.mlp.down_proj.weight", down);
        writer.Save(Path.Combine(folder, "model.safetensors"));
    }

    private static void WithCheckpoint(Action<string, string> body, bool poison = false)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string input = folder.File("in");
        WriteCheckpoint(input, poison);
        body(input, folder.File("out"));
    }
}
