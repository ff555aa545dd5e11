using Compression.Distillation;
using Compression.Quantization;
using Compression.TorchSharp.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Distillation;

// In the shared collection: the Distiller reseeds TorchSharp's global generator, which other TorchSharp tests use.
[Collection("TorchSharp")]
public class ReconstructorTests(ITestOutputHelper output)
{
    private static readonly RtnOptions Int2 = new() { Format = NumberFormat.Int2, Granularity = Granularity.PerGroup(32) };

    // 16 windows of BOS + 127 training tokens: every layer's Hessian sees 2,048 rows (width 128 or 384), full rank.
    private static int[][] Calibration() =>
        Enumerable.Range(0, 16).Select(i => new[] { TinyStoriesCorpus.Bos }.Concat(TinyStoriesCorpus.Train.Skip(i * 127).Take(127)).ToArray()).ToArray();

    [Fact]
    public void Apply_RtnInt2OnTinyStories_LowersHeldOutPerplexityAndEveryLayersError()
    {
        using CausalLanguageModel plain = TinyStoriesCorpus.Load();
        using CausalLanguageModel refitted = TinyStoriesCorpus.Load();
        var rtn = new RoundToNearestQuantizer(Int2);
        Dictionary<string, float[]> original = refitted.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        Quantizer.Apply(plain, new QuantizerOptions { Quantization = Int2 });
        ReconstructionReport report = Reconstructor.Apply(refitted, new ReconstructorOptions(rtn), Calibration());

        double before = TinyStoriesCorpus.Perplexity(plain), after = TinyStoriesCorpus.Perplexity(refitted);
        output.WriteLine($"RTN INT2 g32 held-out perplexity (8 windows): {before:F3} → {after:F3} after layer-wise reconstruction ({report.Elapsed.TotalSeconds:F1} s)");
        foreach (LayerReconstruction layer in report.Layers)
        {
            output.WriteLine($"  {layer.Name}: {layer.Fit.InitialError:E3} → {layer.Fit.FinalError:E3} ({layer.Fit.Iterations} iterations)");
        }

        Assert.Equal(14, report.Layers.Count);                 // 2 layers × 7 linear weights; the tied head is ignored
        Assert.All(report.Layers, l => Assert.True(l.Fit.FinalError <= l.Fit.InitialError, l.Name));
        Assert.All(report.Layers, l => Assert.True(l.Fit.FinalError < 0.95 * l.Fit.InitialError, $"{l.Name}: the fit should gain at least 5%"));
        Assert.True(after < 0.9 * before, $"perplexity {before:F3} → {after:F3}");

        // Codes stay those of RTN on the original weight: only the scales moved, and the model holds exactly Ŵ.
        foreach (LayerReconstruction layer in report.Layers)
        {
            var fitted = Assert.IsType<QuantizedTensor>(layer.Fit.Tensor);
            float[] weight = original[layer.Name + ".weight"];
            var dense = new Compression.Tensors.DenseTensor(weight, [fitted.Rows, fitted.Columns]);
            var reference = (QuantizedTensor)rtn.Compress(dense, CompressionContext.Default);
            Assert.Equal(reference.UnpackCodes(), fitted.UnpackCodes());
            float[] stored = refitted.named_parameters().Single(p => p.name == layer.Name + ".weight").parameter.data<float>().ToArray();
            Assert.Equal(fitted.Decompress().Span.ToArray(), stored);
        }
    }

    [Fact]
    public void Apply_BadInput_ThrowsArgumentException()
    {
        using CausalLanguageModel model = TinyStoriesCorpus.Load();
        var rtn = new ReconstructorOptions(new RoundToNearestQuantizer(Int2));
        Assert.Equal("calibration", Assert.Throws<ArgumentException>(() => Reconstructor.Apply(model, rtn, [])).ParamName);
        Assert.Equal("calibration", Assert.Throws<ArgumentException>(() => Reconstructor.Apply(model, rtn, [[1, 5000]])).ParamName);
        // MXFP4's power-of-two scales are not continuous: nothing to fit, said before any layer changes.
        var mxfp4 = new ReconstructorOptions(new RoundToNearestQuantizer(new RtnOptions { Format = NumberFormat.Mxfp4 }));
        float[] before = model.named_parameters().First(p => p.name.EndsWith("q_proj.weight", StringComparison.Ordinal)).parameter.data<float>().ToArray();
        var error = Assert.Throws<ArgumentException>(() => Reconstructor.Apply(model, mxfp4, Calibration()));
        Assert.Equal("options", error.ParamName);
        Assert.Contains("no continuous parameters", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, model.named_parameters().First(p => p.name.EndsWith("q_proj.weight", StringComparison.Ordinal)).parameter.data<float>().ToArray());
    }
}
