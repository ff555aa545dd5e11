// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>
/// Refuses a model whose targeted weights hold NaN or infinity before a model-level run changes any layer: the
/// per-layer compressors refuse such a weight too, but only when they reach it, after earlier layers were overwritten.
/// </summary>
internal static class FiniteWeights
{
    /// <summary>Throws naming the first targeted layer with a non-finite weight, and where it is.</summary>
    /// <exception cref="ArgumentException">A weight holds NaN or ±∞ (parameter <c>weight</c>, as the compressors name it).</exception>
    public static void Ensure(IEnumerable<string> targets, IReadOnlyDictionary<string, Linear> layers, string method)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (string name in targets)
        {
            Tensor weight = layers[name].weight!.detach();
            Tensor bad = torch.isfinite(weight).logical_not();
            if (!bad.any().item<bool>())
            {
                continue;
            }

            // The first offending element in row-major order, as CompressorArguments reports it.
            long[] index = bad.nonzero()[0].cpu().data<long>().ToArray();
            float value = weight[index[0], index[1]].to(ScalarType.Float32).cpu().item<float>();
            throw new ArgumentException(
                $"{method} ({name}): the weight holds {value} at ({index[0]}, {index[1]}); weights must be finite. No layer was changed.", "weight");
        }
    }
}
