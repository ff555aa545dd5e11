// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using System.Globalization;
using Compression.Quantization.Checkpoints;
using Compression.Tool.Infrastructure;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;

namespace Compression.Tool.Commands;

/// <summary>
/// <c>compress quantize</c>: writes a compressed-tensors checkpoint (model.safetensors + config.json with its
/// <c>quantization_config</c>, plus the input's tokenizer files). Round-to-nearest schemes stream the checkpoint tensor
/// by tensor through <see cref="CheckpointQuantizer"/> (bounded memory, no libtorch, resumable); GPTQ schemes load the
/// model, calibrate block by block (<c>Quantizer.Apply</c>),
/// pack and save (<see cref="CompressedModels"/>). Every file is written to a temporary name and renamed.
/// </summary>
internal static class QuantizeCommand
{
    /// <summary>The quantize command's arguments.</summary>
    internal sealed record Settings(string Checkpoint, string Scheme, string Output, string? Calibration, int Samples, int SequenceLength,
        string? Tokenizer);

    /// <summary>Runs the command.</summary>
    public static QuantizeResult Run(Settings settings, ToolContext context)
    {
        QuantizationScheme scheme = QuantizationScheme.Find(settings.Scheme);
        CheckpointLocation input = CheckpointLocation.Resolve(settings.Checkpoint);
        string output = OutputFolder.Validate(settings.Output, input);
        if (scheme.IsGptq && settings.Calibration is null)
        {
            throw ToolException.Usage($"scheme '{scheme.Name}' is GPTQ and needs calibration text: add --calib <text file>.");
        }

        if (!scheme.IsGptq && settings.Calibration is not null)
        {
            context.Warn($"scheme '{scheme.Name}' is round to nearest; --calib is not used.");
        }

        input.RequireModelFolder();
        var clock = Stopwatch.StartNew();
        int layers;
        long originalBits, compressedBits;
        int samples = 0;
        if (scheme.IsGptq)
        {
            TextData text = TextData.Load(settings.Tokenizer, input);
            using CausalLanguageModel model = ModelLoader.Load(input);
            IReadOnlyList<int[]> calibration = CalibrationCommon.Windows(text, settings.Calibration!, settings.Samples, settings.SequenceLength, model);
            samples = calibration.Count;
            QuantizationReport report = context.WithProgress(progress =>
                Quantizer.Apply(model, scheme.Options, calibration, progress, context.CancellationToken));
            Quantizer.Pack(model, report);
            context.CancellationToken.ThrowIfCancellationRequested();
            CompressedModels.Save(model, output, scheme.Options.Ignore);
            (layers, originalBits, compressedBits) = (report.Layers.Count, report.OriginalBits, report.CompressedBits);
        }
        else
        {
            CheckpointQuantizationResult result = context.WithProgress(progress =>
                CheckpointQuantizer.Quantize(input.Folder, output, scheme.Options, progress, context.CancellationToken));
            (layers, originalBits, compressedBits) = (result.Modules.Count, result.OriginalBits, result.CompressedBits);
        }

        IReadOnlyList<string> copied = OutputFolder.CopyCompanionFiles(input.Folder, output, context.CancellationToken);
        return new QuantizeResult(input.Folder, output, scheme.Name, scheme.IsGptq ? "gptq" : "rtn", layers, samples,
            compressedBits == 0 ? 1 : (double)originalBits / compressedBits,
            new FileInfo(Path.Combine(output, "model.safetensors")).Length, copied, clock.Elapsed.TotalSeconds);
    }
}

/// <summary>What <c>compress quantize</c> reports.</summary>
internal sealed record QuantizeResult(string Input, string Output, string Scheme, string Method, int LayersQuantized, int CalibrationSamples,
    double CompressionRatio, long OutputBytes, IReadOnlyList<string> CopiedFiles, double Seconds) : ICommandResult
{
    /// <inheritdoc/>
    public void WriteText(TextWriter output) => output.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"quantized {LayersQuantized} linear layers of {Input} with {Scheme} ({Method}{(CalibrationSamples > 0 ? $", {CalibrationSamples} calibration sequences" : "")}) in {Seconds:F1} s: {CompressionRatio:F2}x smaller (all parameters at 16 bits vs. stored), model.safetensors {OutputBytes:N0} bytes -> {Output}"));
}
