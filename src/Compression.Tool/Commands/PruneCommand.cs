// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using System.Globalization;
using Compression.Pruning;
using Compression.Tool.Infrastructure;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;

namespace Compression.Tool.Commands;

/// <summary>
/// <c>compress prune</c>: prunes every linear layer but the head (<see cref="Pruner.Apply"/>) by magnitude, Wanda or
/// SparseGPT, unstructured at a ratio or N:M, and saves the model densely (zeros stored; safetensors has no sparse
/// layout) with <see cref="DenseModels.Save"/>.
/// </summary>
internal static class PruneCommand
{
    /// <summary>The methods, in help order.</summary>
    public static IReadOnlyList<string> Methods { get; } = ["magnitude", "wanda", "sparsegpt"];

    /// <summary>The prune command's arguments.</summary>
    internal sealed record Settings(string Checkpoint, string Method, string Sparsity, string Output, string? Calibration, int Samples,
        int SequenceLength, string? Tokenizer);

    /// <summary>Runs the command.</summary>
    public static PruneResult Run(Settings settings, ToolContext context)
    {
        string method = settings.Method.Trim().ToLowerInvariant();
        if (!Methods.Contains(method))
        {
            throw ToolException.Usage($"unknown method '{settings.Method}'; expected one of {string.Join(", ", Methods)}.");
        }

        (double? ratio, int n, int m) = ParseSparsity(settings.Sparsity);
        CheckpointLocation input = CheckpointLocation.Resolve(settings.Checkpoint);
        string output = OutputFolder.Validate(settings.Output, input);
        bool needsData = method != "magnitude";
        if (needsData && settings.Calibration is null)
        {
            throw ToolException.Usage($"method '{method}' weighs weights by their inputs and needs calibration text: add --calib <text file>.");
        }

        ICompressor pruner = method switch
        {
            "magnitude" when ratio is double r => new MagnitudePruningOptions { Sparsity = r }.CreateCompressor(),
            "magnitude" => new NofMOptions { N = n, M = m }.CreateCompressor(),
            "wanda" when ratio is double r => new WandaOptions { Sparsity = r }.CreateCompressor(),
            "wanda" => new WandaOptions { NofM = new NofMOptions { N = n, M = m } }.CreateCompressor(),
            _ when ratio is double r => new SparseGptOptions { Sparsity = r }.CreateCompressor(),
            _ => new SparseGptOptions { N = n, M = m }.CreateCompressor(),
        };

        input.RequireModelFolder();
        var clock = Stopwatch.StartNew();
        TextData? text = needsData ? TextData.Load(settings.Tokenizer, input) : null;
        using CausalLanguageModel model = ModelLoader.Load(input);
        IReadOnlyList<int[]> calibration = text is null ? [] : CalibrationCommon.Windows(text, settings.Calibration!, settings.Samples, settings.SequenceLength, model);
        PruningModelReport report = context.WithProgress(progress =>
            Pruner.Apply(model, new PrunerOptions(pruner), calibration, progress, context.CancellationToken));
        context.CancellationToken.ThrowIfCancellationRequested();
        DenseModels.Save(model, output);
        IReadOnlyList<string> copied = OutputFolder.CopyCompanionFiles(input.Folder, output, context.CancellationToken);
        double layerSparsity = report.Layers.Sum(l => l.Sparsity * l.Rows * (double)l.Columns) / Math.Max(1, report.Layers.Sum(l => l.Rows * (double)l.Columns));
        return new PruneResult(input.Folder, output, method, settings.Sparsity, report.Layers.Count, calibration.Count, layerSparsity,
            report.ModelSparsity, copied, clock.Elapsed.TotalSeconds);
    }

    /// <summary>"0.5" (a ratio in (0, 1)) or "2:4" (N of every M kept); exit code 2 otherwise.</summary>
    internal static (double? Ratio, int N, int M) ParseSparsity(string text)
    {
        string[] parts = text.Split(':');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int n) &&
            int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int m) && n >= 1 && n < m && m <= NofMOptions.MaxM)
        {
            return (null, n, m);
        }

        if (parts.Length == 1 && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double ratio) && ratio > 0 && ratio < 1)
        {
            return (ratio, 0, 0);
        }

        throw ToolException.Usage($"--sparsity '{text}' is neither a ratio in (0, 1) such as 0.5 nor N:M with 1 <= N < M <= {NofMOptions.MaxM} such as 2:4.");
    }
}

/// <summary>What <c>compress prune</c> reports.</summary>
internal sealed record PruneResult(string Input, string Output, string Method, string Sparsity, int LayersPruned, int CalibrationSamples,
    double LayerSparsity, double ModelSparsity, IReadOnlyList<string> CopiedFiles, double Seconds) : ICommandResult
{
    /// <inheritdoc/>
    public void WriteText(TextWriter output) => output.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"pruned {LayersPruned} linear layers of {Input} with {Method} at {Sparsity} in {Seconds:F1} s: {LayerSparsity:P1} of their weights are zero ({ModelSparsity:P1} of all parameters); saved densely (zeros stored) -> {Output}"));
}
