// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using Compression.Quantization;
using Compression.TorchSharp.Models;
using TorchSharp.Modules;

namespace Compression;

public static partial class Quantizer
{
    /// <summary>
    /// Runs a multi-stage recipe: each stage quantizes its targets in place with its own options, in order; a layer
    /// quantized by an earlier stage is left alone by later stages (added to their ignores).
    /// </summary>
    /// <remarks>
    /// <para>Every stage runs through <see cref="Apply(CausalLanguageModel, QuantizerOptions, IReadOnlyList{int[]}, IProgress{CompressionProgress}, CancellationToken)"/>,
    /// so a GPTQ stage calibrates on the model as the earlier stages left it (their layers already quantized), as
    /// llm-compressor's staged recipes do.</para>
    /// <para>Before any weight changes, every stage is checked: each target and override pattern must match a linear
    /// layer of the model, the stage's own targets and ignores must leave a layer, every layer's format must fit its
    /// shape, and GPTQ stages need valid calibration sequences. A stage whose layers were all taken by earlier stages
    /// is skipped.</para>
    /// <para>The report lists every quantized layer once, in model order, with the format and method of the stage that
    /// quantized it; the sizes are those of the final model, computed as the single-stage report computes them.</para>
    /// </remarks>
    /// <param name="model">The model; its linear weights are overwritten.</param>
    /// <param name="recipe">The stages.</param>
    /// <param name="calibration">Token sequences (each at most the model's context); needed when a stage uses GPTQ.</param>
    /// <param name="progress">Receives one report per quantized layer: the stage's name, the layer, and the count over
    /// all stages.</param>
    /// <param name="cancellationToken">Checked between layers; a cancelled run leaves some layers quantized.</param>
    /// <exception cref="ArgumentException">A stage's pattern matches no linear layer, a stage's targets and ignores leave
    /// nothing, a format does not fit a layer, or a GPTQ stage has no (or invalid) calibration sequences.</exception>
    /// <example>
    /// <code>
    /// QuantizationReport report = Quantizer.Apply(model, QuantizationRecipe.Load("recipe.json"), calibration);
    /// </code>
    /// </example>
    public static QuantizationReport Apply(CausalLanguageModel model, QuantizationRecipe recipe, IReadOnlyList<int[]>? calibration = null,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(recipe);
        var clock = Stopwatch.StartNew();
        (string Name, int Rows, int Columns)[] linear = LinearLayers(model);
        string[] blockPrefixes = model.Blocks.Select(b => b.Prefix + ".").ToArray();

        // Plan every stage before touching a weight, so that a mistake in a late stage cannot leave a half-done model.
        var plans = new List<(QuantizationStage Stage, string[] Layers, HashSet<string> Earlier)>();
        var claimed = new HashSet<string>(StringComparer.Ordinal);
        foreach (QuantizationStage stage in recipe.Stages)
        {
            QuantizerOptions options = stage.Options;
            foreach (string pattern in options.Targets.Concat(options.Overrides.Select(o => o.Key)))
            {
                if (!linear.Any(l => QuantizerOptions.Matches(pattern, l.Name)))
                {
                    throw new ArgumentException(
                        $"Stage '{stage.Name}': the pattern '{pattern}' matches no linear layer of the model (for example " +
                        $"{string.Join(", ", linear.Take(3).Select(l => l.Name))}).", nameof(recipe));
                }
            }

            var own = linear.Where(l => options.Targets.Any(p => QuantizerOptions.Matches(p, l.Name)) &&
                                        !options.Ignore.Any(p => QuantizerOptions.Matches(p, l.Name))).ToArray();
            if (own.Length == 0)
            {
                throw new ArgumentException($"Stage '{stage.Name}': its targets and ignores leave no linear layer to quantize.", nameof(recipe));
            }

            var left = own.Where(l => !claimed.Contains(l.Name)).ToArray();
            foreach ((string name, int rows, int columns) in left)
            {
                RtnOptions format = options.OptionsFor(name);
                try
                {
                    format.Validate(rows, columns);
                    // Inside a block GPTQ runs; a target outside the blocks gets round-to-nearest (see Apply).
                    if (options.Method == QuantizationMethod.Gptq && blockPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal)))
                    {
                        (options.Gptq with { Quantization = format }).Validate(rows, columns);
                    }
                }
                catch (ArgumentException e)
                {
                    throw new ArgumentException($"Stage '{stage.Name}', layer '{name}' [{rows}×{columns}]: {e.Message}", nameof(recipe), e);
                }
            }

            plans.Add((stage, left.Select(l => l.Name).ToArray(), new HashSet<string>(claimed, StringComparer.Ordinal)));
            claimed.UnionWith(left.Select(l => l.Name));
        }

        QuantizationStage? gptqStage = plans.FirstOrDefault(p => p.Layers.Length > 0 && p.Stage.Options.Method == QuantizationMethod.Gptq).Stage;
        if (gptqStage is not null)
        {
            if (calibration is null || calibration.Count == 0)
            {
                throw new ArgumentException($"Stage '{gptqStage.Name}' uses GPTQ, which needs calibration sequences.", nameof(calibration));
            }

            CheckCalibration(model, calibration);
        }

        var layers = new List<LayerQuantization>(claimed.Count);
        int total = plans.Sum(p => p.Layers.Length);
        foreach ((QuantizationStage stage, string[] stageLayers, HashSet<string> earlier) in plans)
        {
            if (stageLayers.Length == 0)
            {
                continue;   // every layer it targets was quantized by an earlier stage
            }

            cancellationToken.ThrowIfCancellationRequested();
            QuantizerOptions options = stage.Options;
            if (earlier.Count > 0)
            {
                // One anchored alternation of the exact names (QuantizerOptions.Matches adds ^(?:…)$).
                options = options with { Ignore = [.. options.Ignore, "re:" + string.Join("|", earlier.Select(Regex.Escape))] };
            }

            int before = layers.Count;
            IProgress<CompressionProgress>? stageProgress = progress is null
                ? null
                : new StageProgress(progress, stage.Name, before, total);
            QuantizationReport report = Apply(model, options, calibration ?? [], stageProgress, cancellationToken);
            layers.AddRange(report.Layers);
        }

        var order = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < linear.Length; i++)
        {
            order[linear[i].Name] = i;
        }

        LayerQuantization[] merged = layers.OrderBy(l => order[l.Name]).ToArray();
        (long original, long compressed) = ModelBits(model, merged);
        return new QuantizationReport(merged, original, compressed, clock.Elapsed);
    }

    /// <summary>The linear layers <see cref="Quantizer"/> can target, in model order, with their weights' shapes
    /// ([out, in]); names are the checkpoint's (named_modules also lists submodules under field names).</summary>
    internal static (string Name, int Rows, int Columns)[] LinearLayers(CausalLanguageModel model)
    {
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach ((string name, Parameter parameter) in model.named_parameters())
        {
            shapes[name] = parameter.shape;
        }

        return model.named_modules()
            .Where(m => m.module is Linear && shapes.ContainsKey(m.name + ".weight"))
            .Select(m => (m.name, (int)shapes[m.name + ".weight"][0], (int)shapes[m.name + ".weight"][1]))
            .ToArray();
    }

    /// <summary>The model's storage before (every parameter at 16 bits, the BF16 checkpoint) and after (each quantized
    /// layer's weight at its <see cref="LayerQuantization.BitsPerWeight"/>), as the single-stage report counts it.</summary>
    internal static (long Original, long Compressed) ModelBits(CausalLanguageModel model, IEnumerable<LayerQuantization> layers)
    {
        var byName = layers.ToDictionary(l => l.Name, StringComparer.Ordinal);
        long original = 0, compressed = 0;
        foreach ((string name, Parameter parameter) in model.named_parameters())
        {
            long count = parameter.numel();
            original += 16 * count;
            string module = name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length] : "";
            compressed += byName.TryGetValue(module, out LayerQuantization? layer) ? (long)Math.Ceiling(layer.BitsPerWeight * count) : 16 * count;
        }

        return (original, compressed);
    }

    /// <summary>The checks of the single-stage entry point, made before the first stage so that a bad sequence cannot
    /// stop a recipe half-way.</summary>
    internal static void CheckCalibration(CausalLanguageModel model, IReadOnlyList<int[]> calibration)
    {
        for (int s = 0; s < calibration.Count; s++)
        {
            int[] sequence = calibration[s] ?? throw new ArgumentException($"Calibration sequence {s} is null.", nameof(calibration));
            if (sequence.Length == 0 || sequence.Length > model.ContextLength)
            {
                throw new ArgumentException($"Calibration sequence {s} has {sequence.Length} tokens; it must hold 1 to {model.ContextLength}.", nameof(calibration));
            }

            foreach (int id in sequence)
            {
                if ((uint)id >= (uint)model.VocabularySize)
                {
                    throw new ArgumentException($"Calibration sequence {s} holds id {id}, outside the vocabulary of {model.VocabularySize}.", nameof(calibration));
                }
            }
        }
    }

    /// <summary>Forwards a stage's progress with the stage's name and the count over all stages.</summary>
    private sealed class StageProgress(IProgress<CompressionProgress> inner, string stage, int offset, int total) : IProgress<CompressionProgress>
    {
        public void Report(CompressionProgress value) =>
            inner.Report(new CompressionProgress(stage, value.Layer, offset + value.Completed, total));
    }
}
