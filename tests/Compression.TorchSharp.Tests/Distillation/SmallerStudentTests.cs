using Compression.TorchSharp.Distillation;
using Compression.TorchSharp.Models;
using Xunit.Abstractions;

namespace Compression.TorchSharp.Tests.Distillation;

/// <summary>The acceptance check that a smaller student learns more from the teacher than from the labels alone.</summary>
// In the shared collection: the Distiller reseeds TorchSharp's global generator, which other TorchSharp tests use.
[Collection("TorchSharp")]
public class SmallerStudentTests(ITestOutputHelper output)
{
    [Fact]
    public void Distiller_OneLayerStudentOfTinyStories_BeatsTheSameStudentTrainedOnLabelsAlone()
    {
        using CausalLanguageModel teacher = TinyStoriesCorpus.Load();
        var options = new DistillerOptions
        {
            Steps = 40,
            LearningRate = 1e-3,
            Schedule = new LearningRateSchedule { Decay = LearningRateDecay.Cosine, WarmupSteps = 4, MinimumRatio = 0.1 },
            Trainable = TrainableParts.All,
            Seed = 3,
        };

        double Train(DistillationObjective objective)
        {
            // Both arms start from the same student (teacher layer 0, DistilBERT-style) and see the same batches.
            using CausalLanguageModel student = StudentModels.KeepLayers(teacher, [0]);
            var batches = DistillationData.RandomWindows(TinyStoriesCorpus.Train, 129, 8, seed: 5, bos: TinyStoriesCorpus.Bos);
            Distiller.Train(teacher, student, batches, options with { Objective = objective });
            return TinyStoriesCorpus.Perplexity(student);
        }

        double start;
        using (CausalLanguageModel untrained = StudentModels.KeepLayers(teacher, [0]))
        {
            start = TinyStoriesCorpus.Perplexity(untrained);
        }

        double labels = Train(new DistillationObjective { LogitWeight = 0, LabelWeight = 1 });
        double distilled = Train(new DistillationObjective { LogitWeight = 1, LabelWeight = 1 });
        output.WriteLine($"held-out perplexity (8 windows): teacher {TinyStoriesCorpus.Perplexity(teacher):F3}; one-layer student {start:F3} at the start, " +
                         $"{labels:F3} after 40 steps on labels alone, {distilled:F3} after 40 steps of KL + labels");
        Assert.True(labels < start, $"label training should help too: {start:F3} → {labels:F3}");
        Assert.True(distilled < labels, $"distilled {distilled:F3} should beat labels alone {labels:F3}");
    }
}
