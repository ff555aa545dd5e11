using Compression.Calibration;
using Compression.Composition;
using Compression.Numerics;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;
using Compression.Text;

namespace Compression.Core.Tests;

/// <summary>
/// The Core rows of the bad-input matrix (docs/reliability.md) that no other test covers: each bad input gives the
/// documented exception type, naming the parameter (argument errors) or carrying the detail that says what was wrong
/// (file errors), and leaves its input untouched.
/// </summary>
public class BadInputTests
{
    private static readonly DenseTensor Good = RandomData.GaussianMatrix(4, 8, seed: 1);

    /// <summary>(what is wrong, the call, the exception type expected exactly, its ParamName or null, a fragment of its message).</summary>
    public static TheoryData<string, Action, Type, string?, string> Cases => new()
    {
        // Compressors of Core (composition): the shared CompressorArguments.Validate refuses before any child runs.
        { "chained: NaN weight", () => Chain().Compress(WithValue(float.NaN), CompressionContext.Default), typeof(ArgumentException), "weight", "(2, 5)" },
        { "chained: +Inf weight", () => Chain().Compress(WithValue(float.PositiveInfinity), CompressionContext.Default), typeof(ArgumentException), "weight", "Infinity at (2, 5)" },
        { "chained: rank-1 weight", () => Chain().Compress(new DenseTensor(8), CompressionContext.Default), typeof(ArgumentException), "weight", "[8]" },
        { "chained: null child", () => _ = new ChainedCompressor(null!, new GridQuantizer(1)), typeof(ArgumentNullException), "first", "first" },
        { "residual: NaN weight", () => Residual().Compress(WithValue(float.NaN), CompressionContext.Default), typeof(ArgumentException), "weight", "(2, 5)" },
        { "residual: -Inf weight", () => Residual().Compress(WithValue(float.NegativeInfinity), CompressionContext.Default), typeof(ArgumentException), "weight", "-Infinity at (2, 5)" },
        { "residual: rank-3 weight", () => Residual().Compress(new DenseTensor(2, 2, 2), CompressionContext.Default), typeof(ArgumentException), "weight", "[2, 2, 2]" },
        { "residual: null context", () => Residual().Compress(Good, null!), typeof(ArgumentNullException), "context", "context" },

        // Calibration statistics.
        { "Hessian: +Inf activation", () => new HessianAccumulator(8).Add(WithValue(float.PositiveInfinity)), typeof(ArgumentException), "activations", "(2, 5)" },
        { "Hessian: NaN activation in a span", () => new HessianAccumulator(8).Add(WithValue(float.NaN).Span, 4), typeof(ArgumentException), "activations", "NaN at (2, 5) of a 4×8 batch" },
        { "Hessian: activations of the wrong width", () => new HessianAccumulator(8).Add(new DenseTensor(3, 7)), typeof(ArgumentException), "activations", "8" },
        { "Hessian: span shorter than rows × columns", () => new HessianAccumulator(8).Add(new float[15], 2), typeof(ArgumentException), "activations", "16" },
        { "Hessian: negative rows", () => new HessianAccumulator(8).Add(new float[8], -1), typeof(ArgumentOutOfRangeException), "rows", "-1" },
        { "Hessian: merge of another width", () => new HessianAccumulator(8).Merge(new HessianAccumulator(9)), typeof(ArgumentException), "other", "9" },
        { "Hessian: merge of null", () => new HessianAccumulator(8).Merge(null!), typeof(ArgumentNullException), "other", "other" },
        { "Hessian: negative columns", () => _ = new HessianAccumulator(-3), typeof(ArgumentOutOfRangeException), "columns", "-3" },
        { "Hessian: diagonal destination too short", () => new HessianAccumulator(4).CopyHessianTo(new float[15]), typeof(ArgumentException), "destination", "16" },

        // Dense tensors.
        { "tensor: shape product differs from the data", () => _ = DenseTensor.FromValues(new float[5], 2, 3), typeof(ArgumentException), "values", "6" },
        { "tensor: negative dimension", () => _ = new DenseTensor(2, -1), typeof(ArgumentException), "shape", "-1" },

        // Numerics: a non-finite or indefinite matrix is reported as not factorable, never factored.
        { "Cholesky: matrix shorter than n²", () => Cholesky.TryFactor(new double[3], 2), typeof(ArgumentException), "a", "4" },

        // Safetensors (reader: the documented exception; writer: the offending argument).
        { "safetensors: tensor name absent", () => WithFile(f => f.ReadDense("absent")), typeof(KeyNotFoundException), null, "absent" },
        { "safetensors: destination of the wrong length", () => WithFile(f => f.ReadDense("w", new float[31])), typeof(ArgumentException), "destination", "32" },
        { "safetensors: read past the tensor", () => WithFile(f => _ = f.GetBytes("w", 120, 16).Length), typeof(ArgumentOutOfRangeException), "offset", "128" },
        { "safetensors: directory without a checkpoint", () => WithFolder(d => SafetensorsCheckpoint.Open(d).Dispose()), typeof(FileNotFoundException), null, "model.safetensors" },
        { "writer: duplicate tensor", () => { var w = new SafetensorsWriter(); w.Add("a", Good); w.Add("a", Good); }, typeof(ArgumentException), "name", "a" },
        { "writer: shape and data disagree", () => new SafetensorsWriter().Add<float>("a", SafetensorsDType.F32, [3, 3], new float[8]), typeof(ArgumentException), "data", "9" },

        // Compressed-tensor serialization.
        { "serializer: no tensor of that name", () => WithCheckpoint(c => CompressedTensorSerializer.Default.Read(c, "layers.9")), typeof(InvalidDataException), null, "layers.9" },
        { "serializer: empty name", () => WithCheckpoint(c => CompressedTensorSerializer.Default.Read(c, "")), typeof(ArgumentException), "name", "name" },

        // Tokenizers.
        { "character tokenizer: empty alphabet", () => _ = new CharacterTokenizer(""), typeof(ArgumentException), "alphabet", "alphabet" },
        { "character tokenizer: repeated character", () => _ = new CharacterTokenizer("abca"), typeof(ArgumentException), "alphabet", "3" },
        { "character tokenizer: character outside the alphabet", () => new CharacterTokenizer("abc").Encode("abz"), typeof(ArgumentException), "text", "at 2" },
        { "character tokenizer: negative id", () => new CharacterTokenizer("abc").Decode([-1]), typeof(ArgumentOutOfRangeException), "ids", "[0, 3)" },
        { "character tokenizer: id past the vocabulary", () => new CharacterTokenizer("abc").Decode([3]), typeof(ArgumentOutOfRangeException), "ids", "[0, 3)" },
        { "BPE: missing file", () => BpeTokenizer.FromHuggingFaceJson(Path.Combine(Path.GetTempPath(), "no-such-tokenizer-" + Guid.NewGuid().ToString("N") + ".json")), typeof(FileNotFoundException), null, "no-such-tokenizer" },
        { "BPE: empty file", () => Bpe(""), typeof(InvalidDataException), null, "JSON" },
        { "BPE: truncated file", () => Bpe("""{"model": {"type": "BPE", "vocab": {"a": 0"""), typeof(InvalidDataException), null, "JSON" },
        { "BPE: no vocab", () => Bpe("""{"model": {"type": "BPE", "merges": []}}"""), typeof(InvalidDataException), null, "vocab" },
        { "BPE: no merges", () => Bpe("""{"model": {"type": "BPE", "vocab": {"a": 0}}}"""), typeof(InvalidDataException), null, "merges" },
        { "BPE: id not a number", () => Bpe("""{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}"""), typeof(InvalidDataException), null, "'a'" },
        { "BPE: negative id", () => Bpe("""{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}"""), typeof(InvalidDataException), null, "-1" },
        { "BPE: absurd id", () => Bpe("""{"model": {"type": "BPE", "vocab": {"a": 2000000000}, "merges": []}}"""), typeof(InvalidDataException), null, "2000000000" },
        { "BPE: merge of one token", () => Bpe("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}}"""), typeof(InvalidDataException), null, "merge 0" },
        { "BPE: merge not a string or pair", () => Bpe("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}}"""), typeof(InvalidDataException), null, "merge 0" },
        { "BPE: normalizer without a type", () => Bpe("""{"normalizer": {}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"""), typeof(InvalidDataException), null, "type" },
        { "BPE: added token without an id", () => Bpe("""{"added_tokens": [{"content": "<s>"}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"""), typeof(InvalidDataException), null, "id" },
        { "BPE: root is an array", () => Bpe("[1, 2]"), typeof(InvalidDataException), null, "model" },
        { "BPE: model type not a string", () => Bpe("""{"model": {"type": 5, "vocab": {}, "merges": []}}"""), typeof(NotSupportedException), null, "model type" },
        { "BPE: model not an object", () => Bpe("""{"model": 3}"""), typeof(InvalidDataException), null, "model" },
        { "BPE: id past the vocabulary", () => BpeTokenizerOf("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}""").Decode([2]), typeof(ArgumentOutOfRangeException), "ids", "[0, 2)" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInput_IsRefused_WithTheDocumentedException(string why, Action call, Type expected, string? parameter, string detail) =>
        BadInput.AssertRefused(why, call, expected, parameter, detail);

    [Fact]
    public void RefusedWeight_IsLeftUntouched()
    {
        DenseTensor poisoned = WithValue(float.NaN);
        float[] before = poisoned.Span.ToArray();
        Assert.Throws<ArgumentException>(() => Residual().Compress(poisoned, CompressionContext.Default));
        Assert.Equal(before.Select(BitConverter.SingleToInt32Bits), poisoned.Span.ToArray().Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void RefusedActivations_LeaveTheHessianAsItWas()
    {
        HessianAccumulator accumulator = RandomData.CorrelatedHessian(8, 16, seed: 3);
        double[] before = accumulator.GetHessian();
        long samples = accumulator.SampleCount;
        Assert.Throws<ArgumentException>(() => accumulator.Add(WithValue(float.PositiveInfinity)));
        Assert.Equal(samples, accumulator.SampleCount);
        Assert.Equal(before, accumulator.GetHessian());
    }

    [Fact]
    public void EmptyAndZeroInputs_AreValid_NotErrors()
    {
        // Zero activation rows change nothing; an empty weight compresses to an empty tensor; a zero matrix is finite.
        var accumulator = new HessianAccumulator(8);
        accumulator.Add(new DenseTensor(0, 8));
        Assert.Equal(0, accumulator.SampleCount);
        CompressedTensor empty = Residual().Compress(new DenseTensor(0, 8), CompressionContext.Default);
        Assert.Equal((0, 8), (empty.Rows, empty.Columns));
        DenseTensor zero = Residual().Compress(new DenseTensor(3, 8), CompressionContext.Default).Decompress();
        Assert.All(zero.Span.ToArray(), v => Assert.Equal(0f, v));
        Assert.False(Cholesky.TryFactor(new double[] { double.NaN, 0, 0, 1 }, 2));
        Assert.False(Cholesky.TryFactor(new double[] { 1, 2, 2, 1 }, 2));   // indefinite: eigenvalues 3 and -1
    }

    private static ChainedCompressor Chain() => new(new GridQuantizer(0.5f), new GridQuantizer(0.25f));

    private static ResidualCompressor Residual() => new(new GridQuantizer(0.5f), new GridQuantizer(0.125f));

    private static DenseTensor WithValue(float value) => BadInput.WithValueAt25(Good, value);

    private static void WithFolder(Action<string> body)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        body(folder.Path);
    }

    private static void WithFile(Action<SafetensorsFile> body)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        writer.Add("w", Good);
        writer.Save(folder.File("model.safetensors"));
        using SafetensorsFile file = SafetensorsFile.Open(folder.File("model.safetensors"));
        body(file);
    }

    private static void WithCheckpoint(Action<SafetensorsCheckpoint> body)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        CompressedTensorSerializer.Default.Write(writer, "layers.0", new UncompressedTensor(Good));
        writer.Save(folder.File("model.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
        body(checkpoint);
    }

    private static void Bpe(string json) => BpeTokenizerOf(json);

    private static BpeTokenizer BpeTokenizerOf(string json)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        File.WriteAllText(folder.File("tokenizer.json"), json);
        return BpeTokenizer.FromHuggingFaceJson(folder.File("tokenizer.json"));
    }
}
