// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// The parts of a student that one <see cref="Distiller"/> run trains, and the invariants kept while they do: which
/// parameters have <c>requires_grad</c> (and what every parameter had before, restored at the end), the masks of pruned
/// weights (gradients masked, mask re-applied after each step) and the <see cref="QuantizedLinear"/> layers training
/// their scales (committed at the end).
/// </summary>
internal sealed class StudentTraining : IDisposable
{
    private readonly CausalLanguageModel _student;
    private readonly List<(Parameter Parameter, bool RequiresGrad)> _before = [];
    private readonly List<(Parameter Weight, Tensor Pruned)> _masks = [];
    private readonly List<QuantizedLinear> _scaleLayers = [];
    private readonly bool _wasTraining;
    private bool _ended;

    private StudentTraining(CausalLanguageModel student, TrainableParts parts)
    {
        _student = student;
        _wasTraining = student.training;
        Parts = parts;
    }

    /// <summary>The parts selected (an automatic choice resolved).</summary>
    public TrainableParts Parts { get; }

    /// <summary>The trainable tensors with their names, in a stable order (model order; scales after parameters).</summary>
    public List<(string Name, Parameter Parameter)> Parameters { get; } = [];

    /// <summary>Trainable values: every selected tensor's elements, less the pruned entries of masked weights.</summary>
    public long ValueCount { get; private set; }

    /// <summary>What <paramref name="parts"/> null resolves to for <paramref name="student"/>.</summary>
    public static TrainableParts Resolve(CausalLanguageModel student, TrainableParts? parts) =>
        parts ?? (student.CanonicalModules().Any(m => m.Module is AdapterLinear)
            ? TrainableParts.Adapters
            : TrainableParts.QuantizationScales | TrainableParts.LowRankFactors | TrainableParts.UnprunedWeights);

    /// <summary>Freezes everything, then makes the selected parts trainable (scale training begins on the quantized
    /// layers).</summary>
    /// <exception cref="ArgumentException">Nothing of the student falls in <paramref name="parts"/>.</exception>
    public static StudentTraining Begin(CausalLanguageModel student, TrainableParts parts, Device device)
    {
        var modules = student.CanonicalModules().ToList();
        var byName = modules.ToDictionary(m => m.Name, m => m.Module, StringComparer.Ordinal);
        string[] blocks = student.Blocks.Select(b => b.Prefix + ".").ToArray();
        string[] adapterBases = modules.Where(m => m.Module is AdapterLinear).Select(m => m.Name + ".base_layer.").ToArray();
        var training = new StudentTraining(student, parts);
        var seen = new HashSet<IntPtr>();
        var selected = new List<(string Name, Parameter Parameter, TrainableParts Part)>();
        foreach ((string moduleName, nn.Module module) in modules)
        {
            foreach ((string local, Parameter parameter) in module.named_parameters(recurse: false))
            {
                if (!seen.Add(parameter.Handle))
                {
                    continue;       // a tied weight is listed under its first owner only
                }

                string name = moduleName.Length == 0 ? local : moduleName + "." + local;
                training._before.Add((parameter, parameter.requires_grad));
                TrainableParts? part = PartOf(name, local, moduleName, module, byName, blocks, adapterBases);
                // Parameters no part names (PartOf gives All) train only when everything does.
                if (part is TrainableParts p && (p == TrainableParts.All ? parts == TrainableParts.All : (parts & p) != 0))
                {
                    selected.Add((name, parameter, p));
                }
            }
        }

        foreach ((Parameter parameter, _) in training._before)
        {
            parameter.requires_grad = false;
        }

        foreach ((string name, Parameter parameter, TrainableParts part) in selected)
        {
            parameter.requires_grad = true;
            training.Parameters.Add((name, parameter));
            long pruned = 0;
            if (part == TrainableParts.UnprunedWeights)
            {
                using var noGrad = torch.no_grad();
                Tensor zero = parameter.eq(0);
                pruned = zero.sum().item<long>();
                if (pruned > 0)
                {
                    training._masks.Add((parameter, zero));
                }
                else
                {
                    zero.Dispose();
                }
            }

            training.ValueCount += parameter.numel() - pruned;
        }

        if ((parts & TrainableParts.QuantizationScales) != 0)
        {
            foreach ((string name, nn.Module module) in modules)
            {
                if (module is QuantizedLinear { CanTrainScales: true } quantized && !adapterBases.Any(b => (name + ".").StartsWith(b, StringComparison.Ordinal)))
                {
                    Parameter scales = quantized.BeginScaleTraining(device);
                    training._scaleLayers.Add(quantized);
                    training.Parameters.Add((name + ".weight_scale", scales));
                    training.ValueCount += scales.numel();
                }
            }
        }

        if (training.Parameters.Count == 0)
        {
            training.End();
            throw new ArgumentException(
                $"Nothing of the student is trainable as {parts}: it has no such parts (adapters, packed quantized layers with continuous scales, low-rank layers, block linear weights, norms, biases or embeddings as selected).",
                "options");
        }

        return training;
    }

    /// <summary>Zeroes the gradient of every pruned entry (call after backward, before clipping and the step).</summary>
    public void MaskGradients()
    {
        foreach ((Parameter weight, Tensor pruned) in _masks)
        {
            weight.grad?.masked_fill_(pruned, 0);
        }
    }

    /// <summary>Sets every pruned entry back to zero (call after each optimizer step: weight decay and Adam's moments
    /// could otherwise move them).</summary>
    public void ApplyMasks()
    {
        using var noGrad = torch.no_grad();
        foreach ((Parameter weight, Tensor pruned) in _masks)
        {
            weight.masked_fill_(pruned, 0);
        }
    }

    /// <summary>Commits trained scales, restores every parameter's <c>requires_grad</c> and the student's mode. Safe to
    /// call twice.</summary>
    public void End()
    {
        if (_ended)
        {
            return;
        }

        _ended = true;
        foreach (QuantizedLinear layer in _scaleLayers)
        {
            layer.CommitScales();
        }

        foreach ((Parameter parameter, bool requiresGrad) in _before)
        {
            parameter.requires_grad = requiresGrad;
        }

        _student.train(_wasTraining);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        End();
        foreach ((_, Tensor pruned) in _masks)
        {
            pruned.Dispose();
        }

        _masks.Clear();
    }

    /// <summary>The part a parameter belongs to; null for one that never trains (an adapter's base) or that no part
    /// names (<see cref="TrainableParts.All"/>: trained only when everything is).</summary>
    private static TrainableParts? PartOf(string name, string local, string moduleName, nn.Module module,
        Dictionary<string, nn.Module> byName, string[] blocks, string[] adapterBases)
    {
        if (adapterBases.Any(b => name.StartsWith(b, StringComparison.Ordinal)))
        {
            return null;
        }

        if (Ancestors(moduleName, byName).Any(m => m is AdapterLinear) || module is AdapterLinear)
        {
            return TrainableParts.Adapters;
        }

        bool isBias = local == "bias";
        nn.Module? parent = Ancestors(moduleName, byName).FirstOrDefault();
        return module switch
        {
            Linear when parent is LowRankLinear => isBias ? TrainableParts.Biases : TrainableParts.LowRankFactors,
            LowRankLinear or QuantizedLinear => isBias ? TrainableParts.Biases : null,
            RmsNorm or LayerNorm => TrainableParts.Norms,
            Embedding => TrainableParts.Embeddings,
            Linear when isBias => TrainableParts.Biases,
            Linear when blocks.Any(b => name.StartsWith(b, StringComparison.Ordinal)) => TrainableParts.UnprunedWeights,
            Linear => TrainableParts.Embeddings,       // the head (lm_head) and any linear layer outside the blocks
            _ => TrainableParts.All,
        };
    }

    /// <summary>The modules above <paramref name="moduleName"/>, nearest first.</summary>
    private static IEnumerable<nn.Module> Ancestors(string moduleName, Dictionary<string, nn.Module> byName)
    {
        for (int dot = moduleName.LastIndexOf('.'); dot > 0; dot = moduleName.LastIndexOf('.', dot - 1))
        {
            if (byName.TryGetValue(moduleName[..dot], out nn.Module? ancestor))
            {
                yield return ancestor;
            }
        }
    }
}
