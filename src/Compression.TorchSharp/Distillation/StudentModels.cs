// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Nodes;
using Compression.TorchSharp.Models;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// Builds smaller students from a teacher: the same architecture with fewer decoder layers, each copied from a chosen
/// teacher layer, and the embeddings, final norm and head copied as they are (the initialisation of DistilBERT, which
/// keeps every other layer, and of TinyBERT/MiniLM's layer-dropped students).
/// </summary>
/// <remarks>
/// Starting from the teacher's own layers rather than from random weights is what makes a few hundred distillation
/// steps enough: the student begins close to the teacher's function. The student is a new model; the teacher is not
/// touched. Its saved config.json (when the teacher was loaded from one) has the new layer count.
/// </remarks>
public static class StudentModels
{
    /// <summary>A copy of <paramref name="teacher"/> keeping only the decoder layers at <paramref name="layers"/>, in
    /// that order (student layer j is teacher layer <c>layers[j]</c>).</summary>
    /// <exception cref="ArgumentException">No layers, an index outside [0, teacher layers), or a repeated index.</exception>
    /// <exception cref="NotSupportedException">The architecture is not one this method can rebuild.</exception>
    public static CausalLanguageModel KeepLayers(CausalLanguageModel teacher, IReadOnlyList<int> layers)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(layers);
        IReadOnlyList<(string Prefix, nn.Module<Tensor, Tensor> Block)> teacherBlocks = teacher.Blocks;
        if (layers.Count == 0)
        {
            throw new ArgumentException("Keep at least one layer.", nameof(layers));
        }

        for (int j = 0; j < layers.Count; j++)
        {
            if (layers[j] < 0 || layers[j] >= teacherBlocks.Count)
            {
                throw new ArgumentException($"Layer {layers[j]} (entry {j}) is outside [0, {teacherBlocks.Count}): the teacher has {teacherBlocks.Count} layers.", nameof(layers));
            }

            if (layers.Take(j).Contains(layers[j]))
            {
                throw new ArgumentException($"Layer {layers[j]} is listed twice.", nameof(layers));
            }
        }

        CausalLanguageModel student = teacher switch
        {
            LlamaForCausalLM llama => new LlamaForCausalLM(llama.Config with { Layers = layers.Count }),
            Gpt2LMHeadModel gpt2 => new Gpt2LMHeadModel(gpt2.Config with { Layers = layers.Count }),
            _ => throw new NotSupportedException($"Cannot build a smaller {teacher.Architecture}."),
        };

        try
        {
            CopyWeights(teacher, student, layers);
            foreach (KeyValuePair<string, Safetensors.SafetensorsDType> entry in teacher.SourceDTypes)
            {
                if (TeacherToStudentName(entry.Key, teacherBlocks, student.Blocks, layers) is { } name)
                {
                    student.SourceDTypes[name] = entry.Value;
                }
            }

            student.SourceConfigJson = WithLayerCount(teacher.SourceConfigJson, layers.Count);
            student.eval();
            return student;
        }
        catch
        {
            student.Dispose();
            throw;
        }
    }

    /// <summary>Keeps teacher layers 0, 2, 4, … (DistilBERT's choice): half the layers, rounded up.</summary>
    /// <exception cref="NotSupportedException">The architecture is not one this method can rebuild.</exception>
    public static CausalLanguageModel EveryOtherLayer(CausalLanguageModel teacher)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        return KeepLayers(teacher, Enumerable.Range(0, (teacher.Blocks.Count + 1) / 2).Select(i => 2 * i).ToArray());
    }

    private static void CopyWeights(CausalLanguageModel teacher, CausalLanguageModel student, IReadOnlyList<int> layers)
    {
        IReadOnlyList<(string Prefix, nn.Module<Tensor, Tensor> Block)> teacherBlocks = teacher.Blocks, studentBlocks = student.Blocks;
        Dictionary<string, Tensor> source = teacher.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);
        using var noGrad = no_grad();
        foreach ((string name, global::TorchSharp.Modules.Parameter parameter) in student.named_parameters())
        {
            string teacherName = StudentToTeacherName(name, teacherBlocks, studentBlocks, layers);
            if (!source.TryGetValue(teacherName, out Tensor? value) || !value.shape.SequenceEqual(parameter.shape))
            {
                throw new InvalidOperationException($"The teacher has no parameter '{teacherName}' of shape [{string.Join(", ", parameter.shape)}] for the student's '{name}'.");
            }

            parameter.copy_(value);
        }
    }

    private static string StudentToTeacherName(string name, IReadOnlyList<(string Prefix, nn.Module<Tensor, Tensor> Block)> teacherBlocks,
        IReadOnlyList<(string Prefix, nn.Module<Tensor, Tensor> Block)> studentBlocks, IReadOnlyList<int> layers)
    {
        for (int j = 0; j < studentBlocks.Count; j++)
        {
            string prefix = studentBlocks[j].Prefix + ".";
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                return teacherBlocks[layers[j]].Prefix + "." + name[prefix.Length..];
            }
        }

        return name;
    }

    private static string? TeacherToStudentName(string name, IReadOnlyList<(string Prefix, nn.Module<Tensor, Tensor> Block)> teacherBlocks,
        IReadOnlyList<(string Prefix, nn.Module<Tensor, Tensor> Block)> studentBlocks, IReadOnlyList<int> layers)
    {
        for (int i = 0; i < teacherBlocks.Count; i++)
        {
            string prefix = teacherBlocks[i].Prefix + ".";
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                int j = IndexOf(layers, i);
                return j < 0 ? null : studentBlocks[j].Prefix + "." + name[prefix.Length..];
            }
        }

        return name;
    }

    private static int IndexOf(IReadOnlyList<int> values, int value)
    {
        for (int i = 0; i < values.Count; i++)
        {
            if (values[i] == value)
            {
                return i;
            }
        }

        return -1;
    }

    private static string? WithLayerCount(string? configJson, int layers)
    {
        if (configJson is null || JsonNode.Parse(configJson, documentOptions: new System.Text.Json.JsonDocumentOptions { AllowDuplicateProperties = false }) is not JsonObject root)
        {
            return null;
        }

        foreach (string key in new[] { "num_hidden_layers", "n_layer" })
        {
            if (root.ContainsKey(key))
            {
                root[key] = layers;
            }
        }

        return root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }
}
