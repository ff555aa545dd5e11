// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using Compression.Calibration;
using Compression.LowRank;
using Compression.Tensors;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression;

/// <summary>
/// Factorises the linear layers of a TorchSharp language model into low-rank pairs, the sibling of
/// <see cref="Quantizer"/> and <see cref="Pruner"/>: same targeting, and the same block-by-block calibration when the
/// factorisation is activation-aware (SVD-LLM), so every layer is fitted to the inputs it sees after the layers
/// before it were factorised.
/// </summary>
/// <example>
/// <code>
/// FactorizationReport report = Factorizer.Apply(model, new FactorizerOptions { GlobalParameterRatio = 0.7 });
/// Console.WriteLine($"{report.ParametersBefore} → {report.ParametersAfter} parameters");
/// </code>
/// </example>
public static class Factorizer
{
    /// <summary>Factorises the targeted layers in place.</summary>
    /// <param name="model">The model; targeted layers are replaced (or their weights overwritten, see
    /// <see cref="FactorizerOptions.ReplaceModules"/>).</param>
    /// <param name="options">The factorisation, budget and targets.</param>
    /// <param name="calibration">Token sequences (each at most the model's context); needed when the factorisation is
    /// activation-aware, ignored otherwise.</param>
    /// <param name="progress">One report per layer.</param>
    /// <param name="cancellationToken">Checked between layers and calibration sequences. A cancelled or failed run puts
    /// back every weight it had overwritten (modules are swapped only once every layer is done), so the model is either
    /// fully factorised or untouched.</param>
    /// <exception cref="ArgumentException">A pattern matches no linear layer; activation-aware factorisation without
    /// (or with invalid) calibration sequences; a rank that does not fit a layer; a budget that cannot be met.</exception>
    public static FactorizationReport Apply(CausalLanguageModel model, FactorizerOptions options, IReadOnlyList<int[]>? calibration = null,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        calibration ??= [];
        var clock = Stopwatch.StartNew();
        long before = Parameters(model);
        Dictionary<string, Linear> linear = model.CanonicalModules().Where(m => m.Module is Linear)
            .ToDictionary(m => m.Name, m => (Linear)m.Module);
        string[] targets = options.Selection.SelectTargets(linear.Keys);
        if (options.Base is not null && options.ReplaceModules)
        {
            throw new ArgumentException(
                $"With a base compressor ('{options.Base.Name}') the layer becomes Ŵ + A·B, written into the dense weight: set ReplaceModules = false.",
                nameof(options));
        }

        bool aware = options.LowRank.Whitening != ActivationWhitening.None
            || (options.Base is not null && options.Base.Requirements.HasFlag(CalibrationRequirements.InputHessian));
        if (aware)
        {
            if (calibration.Count == 0)
            {
                throw new ArgumentException(
                    $"Activation-aware factorisation ({options.LowRank.Whitening}, base {options.Base?.Name ?? "none"}) needs calibration sequences.", nameof(calibration));
            }

            Quantizer.CheckCalibration(model, calibration);
        }

        FiniteWeights.Ensure(targets, linear, "svd");
        Dictionary<string, LowRankOptions?> perLayer = Allocate(linear, targets, options, cancellationToken);
        var layers = new Dictionary<string, LayerFactorization>(StringComparer.Ordinal);
        int done = 0;
        using var rollback = new WeightRollback();
        void FactorizeLayer(string name, HessianAccumulator? hessian)
        {
            var layerClock = Stopwatch.StartNew();
            Linear layer = linear[name];
            LowRankOptions? layerOptions = perLayer[name];
            if (layerOptions is null)
            {
                layers[name] = new LayerFactorization(name, (int)layer.out_features, (int)layer.in_features, null,
                    layer.out_features * layer.in_features, 1, 0, layerClock.Elapsed);
            }
            else
            {
                using var noGrad = torch.no_grad();
                DenseTensor dense = layer.weight!.ToDenseTensor();
                var context = CompressionContext.Default with { InputHessian = hessian, LayerName = name, CancellationToken = cancellationToken };
                CompressedTensor result;
                LowRankTensor factors;
                if (options.Base is null)
                {
                    factors = layerOptions.CreateCompressor().Factorize(dense, context);
                    result = factors;
                }
                else
                {
                    var residual = (Composition.ResidualTensor)new Composition.ResidualCompressor(options.Base, layerOptions.CreateCompressor())
                        .Compress(dense, context);
                    factors = (LowRankTensor)residual.Correction;
                    result = residual;
                }

                // The product goes into the dense weight now so that later blocks calibrate on this layer's new outputs;
                // the modules are swapped at the end.
                using (Tensor product = result.Decompress().ToTorchTensor())
                {
                    rollback.Save(layer.weight!);
                    layer.weight!.copy_(product);
                }

                LowRankReport report = factors.Report!;
                layers[name] = new LayerFactorization(name, dense.Rows, dense.Columns, factors.Rank, (long)(dense.Rows + dense.Columns) * factors.Rank,
                    report.RetainedEnergy, report.RelativeError, layerClock.Elapsed) { Weight = factors, Compressed = result };
            }

            progress?.Report(new CompressionProgress("factorize", name, ++done, targets.Length));
        }

        try
        {
            BlockCalibration.ForEachTarget(model, calibration, linear, targets, aware, FactorizeLayer, cancellationToken);
        }
        catch
        {
            rollback.Restore();
            throw;
        }

        if (options.ReplaceModules)
        {
            foreach (LayerFactorization layer in layers.Values.Where(l => l.Weight is not null))
            {
                Linear old = linear[layer.Name];
                model.ReplaceLinear(layer.Name, new LowRankLinear(layer.Weight!, old.bias));
            }
        }

        LayerFactorization[] ordered = targets.Select(t => layers[t]).ToArray();
        return new FactorizationReport(ordered, before, Parameters(model), clock.Elapsed);
    }

    // Per-layer options: the common ones, or with the rank the global allocation gave (null = stays dense).
    private static Dictionary<string, LowRankOptions?> Allocate(Dictionary<string, Linear> linear, string[] targets, FactorizerOptions options,
        CancellationToken cancellationToken)
    {
        if (options.GlobalParameterRatio is not double ratio)
        {
            return targets.ToDictionary(t => t, _ => (LowRankOptions?)options.LowRank, StringComparer.Ordinal);
        }

        // WeLore ranks from the weights' own spectra (data-free, as the method is), then each layer is factorised at
        // its rank, activation-aware if asked.
        var spectra = new List<LayerSpectrum>(targets.Length);
        foreach (string name in targets)
        {
            cancellationToken.ThrowIfCancellationRequested();
            DenseTensor w;
            using (torch.no_grad())
            {
                w = linear[name].weight!.ToDenseTensor();
            }

            spectra.Add(new LayerSpectrum(name, w.Rows, w.Columns, SingularValueDecomposition.Exact(w, cancellationToken).SingularValues));
        }

        return WeLoreRankAllocator.Allocate(spectra, ratio).ToDictionary(
            a => a.Name,
            a => a.Rank is int rank ? options.LowRank with { Rank = RankRule.Fixed(rank) } : null,
            StringComparer.Ordinal);
    }

    private static long Parameters(CausalLanguageModel model) =>
        model.named_parameters().DistinctBy(p => p.name).Sum(p => p.parameter.numel());
}
