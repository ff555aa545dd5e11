// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Diagnostics;
using System.Globalization;
using Compression.LowRank;
using Compression.Tool.Infrastructure;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;

namespace Compression.Tool.Commands;

/// <summary>
/// <c>compress lowrank</c>: truncated SVD of every linear layer but the head (<see cref="Factorizer.Apply"/>), at a
/// fixed rank or a retained-energy fraction, activation-aware (SVD-LLM's Cholesky whitening) when calibration text is
/// given. The output is the <b>dense reconstruction</b> A·B in the original tensor names and dtypes: any Hugging Face
/// reader (and <c>compress eval</c>) loads it, but it is as large as the input; the report gives the parameter count
/// the factors themselves would take.
/// </summary>
internal static class LowRankCommand
{
    /// <summary>The lowrank command's arguments.</summary>
    internal sealed record Settings(string Checkpoint, int? Rank, double? Energy, string Output, string? Calibration, int Samples,
        int SequenceLength, string? Tokenizer);

    /// <summary>Runs the command.</summary>
    public static LowRankResult Run(Settings settings, ToolContext context)
    {
        if ((settings.Rank is null) == (settings.Energy is null))
        {
            throw ToolException.Usage("give exactly one of --rank N and --energy F.");
        }

        if (settings.Rank is < 1)
        {
            throw ToolException.Usage($"--rank must be at least 1; got {settings.Rank}.");
        }

        if (settings.Energy is double e && !(e > 0 && e <= 1))
        {
            throw ToolException.Usage($"--energy must be in (0, 1]; got {e.ToString(CultureInfo.InvariantCulture)}.");
        }

        CheckpointLocation input = CheckpointLocation.Resolve(settings.Checkpoint);
        string output = OutputFolder.Validate(settings.Output, input);
        input.RequireModelFolder();
        var clock = Stopwatch.StartNew();
        bool aware = settings.Calibration is not null;
        TextData? text = aware ? TextData.Load(settings.Tokenizer, input) : null;
        using CausalLanguageModel model = ModelLoader.Load(input);
        IReadOnlyList<int[]> calibration = text is null ? [] : CalibrationCommon.Windows(text, settings.Calibration!, settings.Samples, settings.SequenceLength, model);
        var options = new FactorizerOptions
        {
            LowRank = new LowRankOptions
            {
                Rank = settings.Rank is int r ? RankRule.Fixed(r) : RankRule.Energy(settings.Energy!.Value),
                Whitening = aware ? ActivationWhitening.Cholesky : ActivationWhitening.None,
            },
            ReplaceModules = false,
        };
        FactorizationReport report = context.WithProgress(progress =>
            Factorizer.Apply(model, options, calibration, progress, context.CancellationToken));
        context.CancellationToken.ThrowIfCancellationRequested();
        DenseModels.Save(model, output);
        IReadOnlyList<string> copied = OutputFolder.CopyCompanionFiles(input.Folder, output, context.CancellationToken);

        LayerFactorization[] factored = report.Layers.Where(l => l.Rank is not null).ToArray();
        long dense = factored.Sum(l => (long)l.Rows * l.Columns);
        long factors = factored.Sum(l => l.Parameters);
        return new LowRankResult(input.Folder, output, settings.Rank is null ? $"energy {settings.Energy!.Value.ToString(CultureInfo.InvariantCulture)}" : $"rank {settings.Rank}",
            aware ? "activation-aware (Cholesky whitening)" : "plain SVD", factored.Length, report.Layers.Count - factored.Length, calibration.Count,
            factored.Select(l => new LowRankLayer(l.Name, l.Rows, l.Columns, l.Rank!.Value, l.RetainedEnergy, l.RelativeError)).ToArray(),
            report.ParametersBefore, report.ParametersBefore - dense + factors, copied, clock.Elapsed.TotalSeconds);
    }
}

/// <summary>One factorised layer.</summary>
internal sealed record LowRankLayer(string Name, int Rows, int Columns, int Rank, double RetainedEnergy, double RelativeError);

/// <summary>What <c>compress lowrank</c> reports. <see cref="ParametersIfFactored"/> counts the factors in place of the
/// dense weights; the saved file holds <see cref="Parameters"/> (the dense reconstruction).</summary>
internal sealed record LowRankResult(string Input, string Output, string Rule, string Method, int LayersFactorized, int LayersKeptDense,
    int CalibrationSamples, IReadOnlyList<LowRankLayer> Layers, long Parameters, long ParametersIfFactored, IReadOnlyList<string> CopiedFiles,
    double Seconds) : ICommandResult
{
    /// <inheritdoc/>
    public void WriteText(TextWriter output)
    {
        CultureInfo c = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(c,
            $"factorised {LayersFactorized} linear layers of {Input} ({Rule}, {Method}) in {Seconds:F1} s; {LayersKeptDense} kept dense"));
        foreach (LowRankLayer l in Layers)
        {
            output.WriteLine(string.Create(c, $"  {l.Name} [{l.Rows}, {l.Columns}] rank {l.Rank}: energy {l.RetainedEnergy:P1}, relative error {l.RelativeError:F4}"));
        }

        output.WriteLine(string.Create(c,
            $"parameters {Parameters:N0} as saved (dense reconstruction A·B); {ParametersIfFactored:N0} if stored as factors -> {Output}"));
    }
}
