// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using Compression.Calibration;
using Compression.Tensors;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression;

/// <summary>
/// Prunes the linear layers of a TorchSharp language model in place (pruned weights set to zero, the mask kept in the
/// report), the sibling of <see cref="Quantizer"/>: same targeting, same block-by-block calibration for pruners that
/// need input statistics (Wanda, SparseGPT), and optionally the quantization of the survivors in the same pass.
/// </summary>
/// <example>
/// <code>
/// // 2:4 with SparseGPT, then GPTQ INT4 on the survivors, in one call:
/// var options = new PrunerOptions(new SparseGptPruner(new SparseGptOptions { N = 2, M = 4 }))
///     { ThenQuantize = QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq } };
/// PruningModelReport report = Pruner.Apply(model, options, calibration);
/// </code>
/// </example>
public static partial class Pruner
{
    /// <summary>Prunes the targeted linear layers in place; calibration sequences are needed when the pruner (or the
    /// quantization that follows) needs the input Hessian.</summary>
    /// <param name="model">The model; its linear weights are overwritten.</param>
    /// <param name="options">The pruner, targets, ignores and optional quantization.</param>
    /// <param name="calibration">Token sequences (each at most the model's context), or empty.</param>
    /// <param name="progress">One report per pruned layer.</param>
    /// <param name="cancellationToken">Checked between layers and calibration sequences. A cancelled or failed run puts
    /// back every weight it had overwritten, so the model is either fully pruned or untouched.</param>
    /// <exception cref="ArgumentException">A pattern matches no linear layer, nothing is left to prune, or the pruner
    /// needs calibration data and none (or an invalid sequence) was given.</exception>
    public static PruningModelReport Apply(CausalLanguageModel model, PrunerOptions options, IReadOnlyList<int[]>? calibration = null,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        calibration ??= [];
        var clock = Stopwatch.StartNew();
        Dictionary<string, Linear> linear = model.CanonicalModules().Where(m => m.Module is Linear)
            .ToDictionary(m => m.Name, m => (Linear)m.Module);
        string[] targets = options.Selection.SelectTargets(linear.Keys);
        bool needsHessian = options.Pruner.Requirements.HasFlag(CalibrationRequirements.InputHessian) ||
                            options.ThenQuantize?.Method == QuantizationMethod.Gptq;
        if (needsHessian)
        {
            if (calibration.Count == 0)
            {
                throw new ArgumentException($"'{options.Pruner.Name}' (or the GPTQ that follows) needs calibration sequences.", nameof(calibration));
            }

            Quantizer.CheckCalibration(model, calibration);
        }

        var layers = new List<LayerPruning>();
        var quantized = new List<LayerQuantization>();
        using var rollback = new WeightRollback();
        int done = 0;
        void PruneLayer(string name, HessianAccumulator? hessian)
        {
            var layerClock = Stopwatch.StartNew();
            Linear layer = linear[name];
            using var noGrad = torch.no_grad();
            DenseTensor dense = layer.weight!.ToDenseTensor();
            var context = CompressionContext.Default with { InputHessian = hessian, LayerName = name, CancellationToken = cancellationToken };
            CompressedTensor pruned = options.Pruner.Compress(dense, context);
            SparsityMask mask = pruned.SparsityMask
                ?? throw new InvalidOperationException($"'{options.Pruner.Name}' returned no sparsity mask for '{name}'; Pruner needs a pruner.");
            using (Tensor values = pruned.Decompress().ToTorchTensor())
            {
                rollback.Save(layer.weight!);
                layer.weight!.copy_(values);
            }

            double objective = pruned is Compression.Pruning.PrunedTensor { Report: { } report } ? report.Objective : double.NaN;
            layers.Add(new LayerPruning(name, options.Pruner.Name, dense.Rows, dense.Columns, mask.Sparsity, objective, layerClock.Elapsed) { Weight = pruned });
            if (options.ThenQuantize is QuantizerOptions quantization)
            {
                QuantizerOptions layerOptions = hessian is null ? quantization with { Method = QuantizationMethod.RoundToNearest } : quantization;
                quantized.Add(Quantizer.QuantizeLayer(name, layer, layerOptions, layerOptions.Method == QuantizationMethod.Gptq ? hessian : null,
                    cancellationToken, pruned, rollback));
            }

            progress?.Report(new CompressionProgress("prune", name, ++done, targets.Length));
        }

        try
        {
            BlockCalibration.ForEachTarget(model, calibration, linear, targets, needsHessian, PruneLayer, cancellationToken);
        }
        catch
        {
            rollback.Restore();
            throw;
        }

        (long parameters, long nonZero) = Count(model);
        QuantizationReport? quantizationReport = null;
        if (options.ThenQuantize is not null)
        {
            (long original, long compressed) = Quantizer.ModelBits(model, quantized);
            quantizationReport = new QuantizationReport(quantized, original, compressed, clock.Elapsed);
        }

        return new PruningModelReport(layers, parameters, nonZero, clock.Elapsed, quantizationReport);
    }

    /// <summary>Parameters of the model, and how many are not zero.</summary>
    internal static (long Parameters, long NonZero) Count(CausalLanguageModel model)
    {
        long total = 0, nonZero = 0;
        using var noGrad = torch.no_grad();
        foreach ((string _, Parameter parameter) in model.named_parameters().DistinctBy(p => p.name))
        {
            total += parameter.numel();
            using Tensor count = parameter.count_nonzero();
            nonZero += count.item<long>();
        }

        return (total, nonZero);
    }
}
