// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using Compression.Calibration;
using Compression.Distillation;
using Compression.Tensors;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression;

/// <summary>
/// Layer-wise reconstruction distillation of a whole model: each targeted linear layer is compressed, then its
/// continuous parameters (scales, kept values, factors) are fitted so that its outputs on calibration inputs match the
/// original layer's (<see cref="ReconstructingCompressor"/>), and the reconstruction is written back in place
/// (fake-compressed, as <see cref="Quantizer"/> and <see cref="Pruner"/> do).
/// </summary>
/// <remarks>
/// <para>A cheap post-training step between one-shot compression and end-to-end <see cref="Distiller"/> training: no
/// gradients through the model, only each layer's input Hessian, collected block by block as GPTQ does (the blocks
/// before a layer are already compressed when its inputs are recorded, so later layers also fit the error of earlier
/// ones).</para>
/// </remarks>
/// <example>
/// <code>
/// var rtn = new RoundToNearestQuantizer(RtnOptions.W4Group128 with { Format = NumberFormat.Int2 });
/// ReconstructionReport report = Reconstructor.Apply(model, new ReconstructorOptions(rtn), calibration);
/// </code>
/// </example>
public static class Reconstructor
{
    /// <summary>Compresses and refits the targeted linear layers of <paramref name="model"/> in place.</summary>
    /// <param name="model">The model; its targeted linear weights are overwritten with their reconstructions.</param>
    /// <param name="options">The compressor, the fit and the targets.</param>
    /// <param name="calibration">Token sequences (each at most the model's context, ids inside the vocabulary).</param>
    /// <param name="progress">Receives one report per layer.</param>
    /// <param name="cancellationToken">Checked between layers and inside each fit. A cancelled or failed run puts back
    /// every weight it had overwritten, so the model is either fully refitted or untouched.</param>
    /// <exception cref="ArgumentException">No calibration sequences or an invalid one (<paramref name="calibration"/>), a
    /// pattern that matches no linear layer, or a compressor whose results have no continuous parameters
    /// (<paramref name="options"/>).</exception>
    public static ReconstructionReport Apply(CausalLanguageModel model, ReconstructorOptions options, IReadOnlyList<int[]> calibration,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(calibration);
        if (calibration.Count == 0)
        {
            throw new ArgumentException("Layer-wise reconstruction fits each layer to its calibration inputs; give at least one sequence.", nameof(calibration));
        }

        Quantizer.CheckCalibration(model, calibration);
        var clock = Stopwatch.StartNew();
        Dictionary<string, Linear> linear = model.CanonicalModules().Where(m => m.Module is Linear)
            .ToDictionary(m => m.Name, m => (Linear)m.Module);
        string[] targets = options.Selection.SelectTargets(linear.Keys);
        var compressor = new ReconstructingCompressor(options.Compressor, options.Reconstruction);
        var layers = new List<LayerReconstruction>();
        using var rollback = new WeightRollback();
        void Refit(string name, HessianAccumulator? hessian)
        {
            Linear layer = linear[name];
            using var noGrad = no_grad();
            DenseTensor dense = layer.weight!.ToDenseTensor();
            var context = CompressionContext.Default with { InputHessian = hessian, LayerName = name, CancellationToken = cancellationToken };
            LayerReconstructionResult fit;
            try
            {
                fit = compressor.Reconstruct(dense, context);
            }
            catch (ArgumentException e) when (e.ParamName is "inner" or "compressed")
            {
                throw new ArgumentException($"'{options.Compressor.Name}' cannot be refitted on '{name}': {e.Message}", nameof(options), e);
            }

            using (Tensor values = fit.Tensor.Decompress().ToTorchTensor())
            {
                rollback.Save(layer.weight!);
                layer.weight!.copy_(values);
            }

            layers.Add(new LayerReconstruction(name, fit));
            progress?.Report(new CompressionProgress("reconstruct", name, layers.Count, targets.Length));
        }

        // Targets outside the blocks (an un-ignored head) come last with no Hessian: the fit needs one, so refuse early.
        var inBlocks = new HashSet<string>(model.Blocks.SelectMany(b => targets.Where(t => t.StartsWith(b.Prefix + ".", StringComparison.Ordinal))), StringComparer.Ordinal);
        string[] outside = targets.Where(t => !inBlocks.Contains(t)).ToArray();
        if (outside.Length > 0)
        {
            throw new ArgumentException($"Layer-wise reconstruction needs each layer's inputs, recorded block by block; {string.Join(", ", outside)} lie outside the decoder blocks: add them to Ignore.", nameof(options));
        }

        try
        {
            BlockCalibration.Run(model, calibration, linear, targets, Refit, cancellationToken);
        }
        catch
        {
            rollback.Restore();
            throw;
        }

        return new ReconstructionReport(layers, clock.Elapsed);
    }
}
