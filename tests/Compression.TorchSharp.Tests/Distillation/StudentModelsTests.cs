using Compression.Testing;
using Compression.TorchSharp.Distillation;
using Compression.TorchSharp.Models;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests.Distillation;

// In the shared collection: the Distiller reseeds TorchSharp's global generator, which other TorchSharp tests use.
[Collection("TorchSharp")]
public class StudentModelsTests
{
    [Theory]
    [InlineData("llama-shakespeare-char")]
    [InlineData("gpt2-shakespeare-char")]
    public void KeepLayers_AllLayers_ComputesTheTeachersLogitsBitForBit(string folder)
    {
        using CausalLanguageModel teacher = HuggingFaceModels.Load(SharedData.File(folder));
        using CausalLanguageModel student = StudentModels.KeepLayers(teacher, Enumerable.Range(0, teacher.Blocks.Count).ToArray());
        using Tensor input = randint(0, teacher.VocabularySize, [2, 32], generator: new Generator(7));
        using (no_grad())
        {
            using Tensor expected = teacher.call(input), actual = student.call(input);
            Assert.True(Same(expected, actual), "logits differ");
        }
    }

    [Fact]
    public void KeepLayers_ChosenLayers_CopiesEachParameterFromItsTeacherLayer()
    {
        using CausalLanguageModel teacher = HuggingFaceModels.Load(SharedData.File("llama-shakespeare-char"));
        using CausalLanguageModel student = StudentModels.KeepLayers(teacher, [4, 1]);
        var source = teacher.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var copied = student.named_parameters().ToList();
        Assert.Equal(2, student.Blocks.Count);
        Assert.Equal(source.Count - 4 * source.Keys.Count(n => n.StartsWith("model.layers.0.", StringComparison.Ordinal)), copied.Count);
        foreach ((string name, var parameter) in copied)
        {
            string teacherName = name.Replace("model.layers.0.", "model.layers.4.", StringComparison.Ordinal)
                                     .Replace("model.layers.1.", "model.layers.1.", StringComparison.Ordinal);
            Assert.True(Same(source[teacherName], parameter), name);
        }

        // The copy is independent: training the student never touches the teacher.
        using (no_grad())
        {
            copied[0].parameter.add_(1);
        }

        Assert.False(Same(source[copied[0].name], copied[0].parameter));
        Assert.Contains("\"num_hidden_layers\": 2", student.SourceConfigJson!, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryOtherLayer_SixLayers_KeepsLayersZeroTwoFour()
    {
        using CausalLanguageModel teacher = HuggingFaceModels.Load(SharedData.File("gpt2-shakespeare-char"));
        using CausalLanguageModel student = StudentModels.EveryOtherLayer(teacher);
        var source = teacher.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(3, student.Blocks.Count);
        using Tensor expected = source["transformer.h.4.mlp.c_fc.weight"];
        using Tensor actual = student.named_parameters().Single(p => p.name == "transformer.h.2.mlp.c_fc.weight").parameter;
        Assert.True(Same(expected, actual));
    }

    [Fact]
    public void KeepLayers_BadIndices_ThrowArgumentException()
    {
        using CausalLanguageModel teacher = HuggingFaceModels.Load(SharedData.File("tinystories-656k"));
        Assert.Equal("layers", Assert.Throws<ArgumentException>(() => StudentModels.KeepLayers(teacher, [])).ParamName);
        Assert.Equal("layers", Assert.Throws<ArgumentException>(() => StudentModels.KeepLayers(teacher, [2])).ParamName);
        Assert.Equal("layers", Assert.Throws<ArgumentException>(() => StudentModels.KeepLayers(teacher, [-1])).ParamName);
        Assert.Equal("layers", Assert.Throws<ArgumentException>(() => StudentModels.KeepLayers(teacher, [1, 1])).ParamName);
    }

    private static bool Same(Tensor a, Tensor b)
    {
        using Tensor equal = a.equal(b);
        using Tensor all = equal.all();
        return all.item<bool>();
    }
}
