// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using Compression.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression;

/// <summary>Which structures <see cref="Pruner.PruneStructure"/> shrinks, and by how much.</summary>
public sealed record StructuredModelPruningOptions
{
    /// <summary>The fraction of each structure's channels removed, in [0, 1); at least one channel is kept.</summary>
    public double Sparsity
    {
        get;
        init => field = value is >= 0 and < 1 ? value : throw new ArgumentOutOfRangeException(nameof(Sparsity), value, "Sparsity must be in [0, 1).");
    } = 0.25;

    /// <summary>Prune MLP intermediate channels. Default true.</summary>
    public bool Mlp { get; init; } = true;

    /// <summary>Prune attention heads (with grouped-query attention: key/value heads with their query heads). Default false.</summary>
    public bool Attention { get; init; }

    /// <summary>Channel score: the sum over every slice the channel spans of |w| (L1) or w² (L2, default).</summary>
    public bool UseL1 { get; init; }

    /// <summary>Structures left alone (glob or <c>re:</c> patterns over names such as <c>model.layers.0.mlp</c>).</summary>
    public IReadOnlyList<string> Ignore { get; init; } = [];
}

/// <summary>One shrunk structure.</summary>
/// <param name="Name">The module name (<c>model.layers.3.mlp</c>).</param>
/// <param name="Kind">"mlp" or "attention".</param>
/// <param name="ChannelsBefore">Channels before (intermediate width, or key/value heads).</param>
/// <param name="Kept">The channels kept, ascending.</param>
public sealed record StructurePruning(string Name, string Kind, int ChannelsBefore, IReadOnlyList<int> Kept);

/// <summary>What <see cref="Pruner.PruneStructure"/> did.</summary>
/// <param name="Structures">Every shrunk structure.</param>
/// <param name="ParametersBefore">The model's parameters before.</param>
/// <param name="ParametersAfter">And after: the smaller model really is smaller.</param>
public sealed record StructuredPruningModelReport(IReadOnlyList<StructurePruning> Structures, long ParametersBefore, long ParametersAfter);

public static partial class Pruner
{
    /// <summary>
    /// Removes whole channels: MLP intermediate channels (gate/up rows and down columns together; GPT-2's c_fc rows and
    /// c_proj columns) and/or attention heads (q/k/v rows with the output projection's columns), scored by the summed
    /// L2 (or L1) norm of everything the channel spans. The dependent layers are replaced by smaller ones, so the
    /// model keeps running with fewer parameters.
    /// </summary>
    /// <exception cref="InvalidOperationException">A structure's layers are packed or quantized (prune structure first).</exception>
    public static StructuredPruningModelReport PruneStructure(CausalLanguageModel model, StructuredModelPruningOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        long before = Count(model).Parameters;
        var done = new List<StructurePruning>();
        var structures = model.CanonicalModules()
            .Where(m => m.Module is IPrunableChannels p && ((p.Kind == "mlp" && options.Mlp) || (p.Kind == "attention" && options.Attention)))
            .Where(m => !options.Ignore.Any(pattern => QuantizerOptions.Matches(pattern, m.Name)))
            .Select(m => (m.Name, Structure: (IPrunableChannels)m.Module)).ToArray();
        using (torch.no_grad())
        {
            foreach ((string name, IPrunableChannels structure) in structures)
            {
                int count = structure.ChannelCount;
                double[] scores = Scores(structure, options.UseL1);
                int keep = Math.Max(1, count - (int)Math.Round(options.Sparsity * count, MidpointRounding.ToEven));
                // Highest scores kept; on equal scores the lower index is kept (deterministic).
                int[] kept = Enumerable.Range(0, count).OrderByDescending(c => scores[c]).ThenBy(c => c).Take(keep).Order().ToArray();
                if (kept.Length < count)
                {
                    structure.Keep(kept);
                }

                done.Add(new StructurePruning(name, structure.Kind, count, kept));
            }
        }

        return new StructuredPruningModelReport(done, before, Count(model).Parameters);
    }

    /// <summary>Per channel, Σ |w| or Σ w² over every slice it spans (float64).</summary>
    internal static double[] Scores(IPrunableChannels structure, bool l1)
    {
        int count = structure.ChannelCount;
        var scores = new double[count];
        foreach (ChannelSlice slice in structure.Slices)
        {
            Tensor weight = slice.Layer.weight!;
            using Tensor part = slice.Side == ChannelSide.Rows
                ? weight.narrow(0, slice.Offset, (long)count * slice.Width).reshape(count, -1)
                : weight.narrow(1, slice.Offset, (long)count * slice.Width).reshape(weight.shape[0], count, slice.Width).transpose(0, 1).reshape(count, -1);
            using Tensor magnitude = l1 ? part.abs() : part.square();
            using Tensor sums = magnitude.to(ScalarType.Float64).sum(1);
            double[] values = sums.data<double>().ToArray();
            for (int c = 0; c < count; c++)
            {
                scores[c] += values[c];
            }
        }

        return scores;
    }
}
