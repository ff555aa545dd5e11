// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading;
using Compression.Calibration;
using Compression.Quantization;
using Compression.Tensors;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression;

/// <summary>
/// Quantizes the linear layers of a TorchSharp language model in place (fake-quantized: each weight is replaced by its
/// dequantized value, so the model runs as before and its accuracy can be measured).
/// </summary>
/// <remarks>
/// <para>With <see cref="QuantizerOptions.InputActivations"/> set (<see cref="QuantizerOptions.W8A8Fp8Dynamic"/>), each
/// quantized <c>Linear</c> also gets a forward pre-hook that quantizes and dequantizes its input per token
/// (<see cref="Compression.TorchSharp.ActivationFakeQuantization"/>), registered only after every layer succeeded.</para>
/// <para>Round-to-nearest needs no data. GPTQ calibrates block by block, as llm-compressor's sequential pipeline does:
/// the calibration sequences are embedded once; for each block (decoder layer) hooks on its linear layers accumulate
/// their input Hessians while the block runs on the current hidden states, the layers are quantized, and the block runs
/// again with quantized weights to produce the next block's inputs. Only one block's activations are held.</para>
/// </remarks>
/// <example>
/// <code>
/// using CausalLanguageModel model = HuggingFaceModels.Load("../shared/data/llama-shakespeare-char");
/// QuantizationReport report = Quantizer.Apply(model, QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq }, calibration);
/// </code>
/// </example>
public static partial class Quantizer
{
    /// <summary>Round-to-nearest quantization of the targeted linear layers, in place.</summary>
    /// <exception cref="ArgumentException">The options ask for GPTQ (which needs calibration data), a pattern matches
    /// no linear layer, or a layer's shape does not fit its format.</exception>
    public static QuantizationReport Apply(CausalLanguageModel model, QuantizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Method == QuantizationMethod.Gptq)
        {
            throw new ArgumentException("GPTQ needs calibration data: use Apply(model, options, calibration).", nameof(options));
        }

        return Apply(model, options, []);
    }

    /// <summary>Quantizes the targeted linear layers in place, with calibration sequences for GPTQ.</summary>
    /// <param name="model">The model; its linear weights are overwritten.</param>
    /// <param name="options">What to quantize and how.</param>
    /// <param name="calibration">Token sequences (each at most the model's context); needed for GPTQ, ignored by RTN.</param>
    /// <param name="progress">Receives one report per quantized layer.</param>
    /// <param name="cancellationToken">Checked between layers and inside each layer's quantizer. A cancelled or failed
    /// run puts back every weight it had overwritten (the originals are kept in a temporary file meanwhile), so the
    /// model is either fully quantized or untouched.</param>
    /// <exception cref="ArgumentException">GPTQ without calibration data, a sequence that is empty, too long or holds
    /// ids outside the vocabulary, or a pattern that matches no linear layer.</exception>
    public static QuantizationReport Apply(CausalLanguageModel model, QuantizerOptions options, IReadOnlyList<int[]> calibration,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default) =>
        ApplyCore(model, options, calibration, journal: null, progress, cancellationToken);

    /// <summary>
    /// <see cref="Apply(CausalLanguageModel, QuantizerOptions, IReadOnlyList{int[]}, IProgress{CompressionProgress}?, CancellationToken)"/>
    /// with layer-level checkpointing for long runs: every finished layer is written (atomically) to
    /// <paramref name="journalFolder"/>, and a run started again after a crash or a cancellation takes the layers whose
    /// entries match (same layer, same original weight bits, same options, same calibration ids) from there instead of
    /// recomputing them; the result equals an uninterrupted run's bit for bit. The folder is deleted when the run
    /// completes.
    /// </summary>
    /// <param name="model">The model; its linear weights are overwritten (restored if the run fails or is cancelled).</param>
    /// <param name="options">What to quantize and how.</param>
    /// <param name="calibration">Token sequences; needed for GPTQ.</param>
    /// <param name="journalFolder">Where finished layers are kept until the run completes (created if needed).</param>
    /// <param name="progress">Receives one report per layer, resumed or computed.</param>
    /// <param name="cancellationToken">As for <c>Apply</c>; the journal is kept for the next run.</param>
    /// <returns>The report; <see cref="QuantizationReport.ResumedLayers"/> counts the layers taken from the journal.</returns>
    /// <exception cref="ArgumentException">As for <c>Apply</c>, or an empty <paramref name="journalFolder"/>.</exception>
    public static QuantizationReport ApplyResumable(CausalLanguageModel model, QuantizerOptions options, IReadOnlyList<int[]> calibration,
        string journalFolder, IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        ArgumentException.ThrowIfNullOrEmpty(journalFolder);
        var journal = new LayerJournal(journalFolder, calibration);
        QuantizationReport report = ApplyCore(model, options, calibration, journal, progress, cancellationToken);
        journal.Delete();
        return report with { ResumedLayers = journal.Resumed };
    }

    private static QuantizationReport ApplyCore(CausalLanguageModel model, QuantizerOptions options, IReadOnlyList<int[]> calibration,
        LayerJournal? journal, IProgress<CompressionProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(calibration);
        var clock = Stopwatch.StartNew();
        // named_modules also lists submodules under their field names; the parameter names are the checkpoint's.
        var canonical = new HashSet<string>(model.named_parameters().Select(p => p.name), StringComparer.Ordinal);
        Dictionary<string, Linear> linear = model.named_modules()
            .Where(m => m.module is Linear && canonical.Contains(m.name + ".weight"))
            .ToDictionary(m => m.name, m => (Linear)m.module);
        string[] targets = options.SelectTargets(linear.Keys);
        if (options.Method == QuantizationMethod.Gptq)
        {
            ValidateCalibration(model, calibration);
        }

        var layers = new List<LayerQuantization>();
        using var rollback = new WeightRollback();
        try
        {
            using var noGrad = torch.no_grad();
            if (options.Method == QuantizationMethod.RoundToNearest)
            {
                for (int i = 0; i < targets.Length; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    layers.Add(QuantizeLayer(targets[i], linear[targets[i]], options, hessian: null, cancellationToken, rollback: rollback, journal: journal));
                    progress?.Report(new CompressionProgress("quantize", targets[i], i + 1, targets.Length));
                }
            }
            else
            {
                CalibrateAndQuantize(model, options, calibration, linear, targets, layers, progress, rollback, journal, cancellationToken);
            }

            cancellationToken.ThrowIfCancellationRequested();
        }
        catch
        {
            rollback.Restore();
            throw;
        }

        if (options.InputActivations is ActivationQuantization activations)
        {
            // Only once every layer is quantized (a failed or cancelled run leaves the model untouched, hooks included):
            // each quantized layer now quantizes its input as the checkpoint declares it, so evaluation measures the
            // W8A8 scheme and not the weights alone. The hook returns a new tensor and leaves the caller's input alone.
            foreach (string name in targets)
            {
                linear[name].register_forward_pre_hook((_, input) => ActivationFakeQuantization.Apply(input, activations));
            }

            layers = layers.Select(l => l with { InputActivations = activations }).ToList();
        }

        (long original, long compressed) = ModelBits(model, layers);
        return new QuantizationReport(layers, original, compressed, clock.Elapsed);
    }

    private static void ValidateCalibration(CausalLanguageModel model, IReadOnlyList<int[]> calibration)
    {
        if (calibration.Count == 0)
        {
            throw new ArgumentException("GPTQ needs at least one calibration sequence.", nameof(calibration));
        }

        CheckCalibration(model, calibration);
    }

    private static void CalibrateAndQuantize(CausalLanguageModel model, QuantizerOptions options, IReadOnlyList<int[]> calibration,
        Dictionary<string, Linear> linear, string[] targets, List<LayerQuantization> layers, IProgress<CompressionProgress>? progress,
        WeightRollback rollback, LayerJournal? journal, CancellationToken cancellationToken)
    {
        int done = 0;
        BlockCalibration.Run(model, calibration, linear, targets, (name, hessian) =>
        {
            // Targets outside the blocks (a head that is not ignored) get round-to-nearest: GPTQ needs their inputs,
            // which only the full forward pass produces.
            QuantizerOptions layerOptions = hessian is null ? options with { Method = QuantizationMethod.RoundToNearest } : options;
            layers.Add(QuantizeLayer(name, linear[name], layerOptions, hessian, cancellationToken, rollback: rollback, journal: journal));
            progress?.Report(new CompressionProgress("quantize", name, ++done, targets.Length));
        }, cancellationToken);
    }

    /// <summary>Quantizes one layer in place (fake-quantized); <paramref name="prior"/> is an earlier stage's result,
    /// e.g. a pruned weight whose mask GPTQ keeps; <paramref name="rollback"/> receives the original before it is overwritten.</summary>
    internal static LayerQuantization QuantizeLayer(string name, Linear layer, QuantizerOptions options, HessianAccumulator? hessian,
        CancellationToken cancellationToken, CompressedTensor? prior = null, WeightRollback? rollback = null, LayerJournal? journal = null)
    {
        var clock = Stopwatch.StartNew();
        RtnOptions format = options.OptionsFor(name);
        Parameter weight = layer.weight!;
        DenseTensor dense = weight.ToDenseTensor();
        CompressedTensor compressed = null!;
        double objective = double.NaN;
        QuantizationMethod method = hessian is null ? QuantizationMethod.RoundToNearest : QuantizationMethod.Gptq;
        string? fingerprint = journal?.Fingerprint(name, dense, InvariantText(method, format, hessian is null ? null : options.Gptq with { Quantization = format }));
        bool resumed = fingerprint is not null && journal!.TryLoad(name, fingerprint, out compressed, out objective);
        if (resumed)
        {
            // The stored result equals what the code below would compute.
        }
        else if (hessian is null)
        {
            compressed = new RoundToNearestQuantizer(format).Compress(dense, CompressionContext.Default with { LayerName = name, Prior = prior, CancellationToken = cancellationToken });
        }
        else
        {
            var context = CompressionContext.Default with { InputHessian = hessian, LayerName = name, Prior = prior, CancellationToken = cancellationToken };
            GptqTensor result = new GptqQuantizer(options.Gptq with { Quantization = format }).Quantize(dense, context);
            objective = result.Report!.Objective;
            compressed = result;
        }

        if (fingerprint is not null && !resumed)
        {
            journal!.Store(name, fingerprint, compressed, objective);
        }

        using Tensor dequantized = compressed.Decompress().ToTorchTensor();
        rollback?.Save(weight);
        weight.copy_(dequantized);
        string granularity = format.EffectiveGranularity.ToString() ?? "";
        return new LayerQuantization(name, $"{format.Format.Name} {granularity}", method, dense.Rows, dense.Columns,
            (double)compressed.StorageBits / dense.Length, objective, clock.Elapsed) { Weight = compressed };
    }

    // Record texts (format, GPTQ options) under the invariant culture, so a journal fingerprint does not depend on the
    // machine's locale.
    private static string InvariantText(QuantizationMethod method, RtnOptions format, GptqOptions? gptq)
    {
        CultureInfo saved = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        try
        {
            return $"{method}|{format}|{gptq}";
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }
    }
}
