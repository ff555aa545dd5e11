using Compression.TorchSharp.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Optimizers;

/// <summary>Bad options and bad parameter choices are refused at the constructor, naming what was wrong.</summary>
[Collection("TorchSharp")]
public class GaLoreOptionsTests
{
    public static TheoryData<GaLoreOptions, string> BadOptions => new()
    {
        { new GaLoreOptions { Rank = 0 }, nameof(GaLoreOptions.Rank) },
        { new GaLoreOptions { UpdateProjectionGap = 0 }, nameof(GaLoreOptions.UpdateProjectionGap) },
        { new GaLoreOptions { Scale = 0 }, nameof(GaLoreOptions.Scale) },
        { new GaLoreOptions { Scale = double.NaN }, nameof(GaLoreOptions.Scale) },
        { new GaLoreOptions { LearningRate = -1e-3 }, nameof(GaLoreOptions.LearningRate) },
        { new GaLoreOptions { Beta1 = 1 }, nameof(GaLoreOptions.Beta1) },
        { new GaLoreOptions { Beta2 = -0.1 }, nameof(GaLoreOptions.Beta2) },
        { new GaLoreOptions { Epsilon = -1e-8 }, nameof(GaLoreOptions.Epsilon) },
        { new GaLoreOptions { WeightDecay = double.PositiveInfinity }, nameof(GaLoreOptions.WeightDecay) },
        { new GaLoreOptions { ProjectionType = (GaLoreProjectionType)7 }, nameof(GaLoreOptions.ProjectionType) },
        { new GaLoreOptions { SvdMethod = (GaLoreSvdMethod)7 }, nameof(GaLoreOptions.SvdMethod) },
        { new GaLoreOptions { Quantization = new QGaLoreOptions { GroupSize = -1 } }, nameof(QGaLoreOptions.GroupSize) },
        { new GaLoreOptions { Quantization = new QGaLoreOptions { CosineThreshold = 0 } }, nameof(QGaLoreOptions.CosineThreshold) },
        { new GaLoreOptions { Quantization = new QGaLoreOptions { CosineThreshold = 1.5 } }, nameof(QGaLoreOptions.CosineThreshold) },
        { new GaLoreOptions { Quantization = new QGaLoreOptions { Patience = 0 } }, nameof(QGaLoreOptions.Patience) },
        { new GaLoreOptions { Quantization = new QGaLoreOptions { GapGrowth = 0 } }, nameof(QGaLoreOptions.GapGrowth) },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadOption_Throws_NamingIt(GaLoreOptions options, string name)
    {
        using Parameter p = new(torch.zeros(4, 4));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new GaLoreAdamW([("w", p)], options));
        Assert.Equal(name, error.ParamName);
    }

    [Fact]
    public void Defaults_AreThePapers_AndValid()
    {
        var options = new GaLoreOptions();
        options.Validate();
        Assert.Equal((128, 200, 0.25, GaLoreProjectionType.Auto, GaLoreSvdMethod.Exact), (options.Rank, options.UpdateProjectionGap, options.Scale, options.ProjectionType, options.SvdMethod));
        new QGaLoreOptions().Validate();
    }

    [Fact]
    public void ChoosingAParameterThatCannotBeProjected_Throws()
    {
        using Parameter vector = new(torch.zeros(16)), small = new(torch.zeros(2, 16));
        var options = new GaLoreOptions { Rank = 4, ProjectParameter = (_, _) => true };
        var error = Assert.Throws<ArgumentException>(() => new GaLoreAdamW([("norm", vector)], options));
        Assert.Equal("parameters", error.ParamName);
        Assert.Contains("'norm'", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new GaLoreAdamW([("thin", small)], options)); // min(2, 16) < rank 4
        Assert.Throws<ArgumentException>(() => new GaLoreAdamW([("a", vector), ("b", vector)], new GaLoreOptions()));
    }

    [Fact]
    public void DefaultChoice_ProjectsEvery2DParameterWiderThanTheRank()
    {
        using Parameter wide = new(torch.zeros(5, 9)), square = new(torch.zeros(4, 4)), vector = new(torch.zeros(9));
        using var optimizer = new GaLoreAdamW([("wide", wide), ("square", square), ("vector", vector)], new GaLoreOptions { Rank = 4 });
        Assert.Equal(["wide"], optimizer.ProjectedParameters);
        Assert.Throws<NotSupportedException>(() => optimizer.add_param_group(new ParamGroup { Parameters = [vector] }));
    }
}
