// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;

namespace Compression.LowRank;

/// <summary>
/// Non-uniform ranks across layers under one global parameter budget, in the manner of WeLore (Jaiswal et al., 2024):
/// every layer's singular values are normalised by its largest, and one threshold τ is chosen for the whole model so
/// that each layer keeps the singular values with σ_i/σ_1 ≥ τ. Layers whose spectra have a heavy tail of small values
/// (the ones that are truly low-rank) lose many ranks; layers with flat spectra keep theirs, and stay dense when a
/// factorisation would not save parameters.
/// </summary>
/// <example>
/// <code>
/// var spectra = layers.Select(l => new LayerSpectrum(l.Name, l.W.Rows, l.W.Columns,
///     SingularValueDecomposition.Exact(l.W).SingularValues)).ToList();
/// IReadOnlyList&lt;LayerRankAllocation&gt; ranks = WeLoreRankAllocator.Allocate(spectra, parameterRatio: 0.6);
/// </code>
/// </example>
public static class WeLoreRankAllocator
{
    /// <summary>
    /// The ranks that keep the most of every layer's normalised spectrum while the layers together hold at most
    /// <paramref name="parameterRatio"/> of their dense parameters.
    /// </summary>
    /// <param name="layers">The layers' spectra.</param>
    /// <param name="parameterRatio">The budget as a share of Σ m·n, in (0, 1].</param>
    /// <returns>One allocation per layer, in the input order.</returns>
    /// <exception cref="ArgumentException">No layers, a malformed spectrum, or a budget below what rank 1 everywhere needs.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="parameterRatio"/> is outside (0, 1].</exception>
    public static IReadOnlyList<LayerRankAllocation> Allocate(IReadOnlyList<LayerSpectrum> layers, double parameterRatio)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (!(parameterRatio > 0 && parameterRatio <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(parameterRatio), parameterRatio, "The parameter ratio must be in (0, 1].");
        }

        if (layers.Count == 0)
        {
            throw new ArgumentException("No layers to allocate ranks to.", nameof(layers));
        }

        foreach (LayerSpectrum layer in layers)
        {
            ArgumentNullException.ThrowIfNull(layer, nameof(layers));
            layer.Validate();
        }

        double budget = parameterRatio * layers.Sum(l => (double)l.DenseParameters);

        // The candidate thresholds are the normalised values themselves; the parameter count only falls as τ rises,
        // so the best τ is the smallest candidate whose count fits, found by bisection over the sorted candidates.
        double[] candidates = layers.SelectMany(Normalised).Distinct().OrderBy(v => v).ToArray();
        double minimum = Parameters(layers, double.PositiveInfinity);
        if (minimum > budget)
        {
            throw new ArgumentException(
                $"A budget of {parameterRatio:P2} ({budget:F0} parameters) is below the {minimum:F0} that rank 1 in every factorised layer needs.",
                nameof(parameterRatio));
        }

        int lo = 0, hi = candidates.Length; // candidates[hi] is "above every value": rank 1 everywhere
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (Parameters(layers, candidates[mid]) <= budget)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        double threshold = lo < candidates.Length ? candidates[lo] : double.PositiveInfinity;
        return layers.Select(l => Allocation(l, threshold)).ToArray();
    }

    private static IEnumerable<double> Normalised(LayerSpectrum layer)
    {
        double largest = layer.SingularValues[0];
        return layer.SingularValues.Select(s => largest == 0 ? 0 : s / largest);
    }

    private static double Parameters(IReadOnlyList<LayerSpectrum> layers, double threshold) =>
        layers.Sum(l => (double)Allocation(l, threshold).Parameters);

    private static LayerRankAllocation Allocation(LayerSpectrum layer, double threshold)
    {
        double largest = layer.SingularValues[0];
        int rank = 0;
        while (rank < layer.SingularValues.Count && largest > 0 && layer.SingularValues[rank] / largest >= threshold)
        {
            rank++;
        }

        rank = Math.Max(rank, 1);
        long factored = (long)rank * (layer.Rows + layer.Columns);
        if (factored >= layer.DenseParameters)
        {
            return new LayerRankAllocation(layer.Name, null, layer.DenseParameters, 1);
        }

        double total = 0, kept = 0;
        for (int i = 0; i < layer.SingularValues.Count; i++)
        {
            double s2 = layer.SingularValues[i] * layer.SingularValues[i];
            total += s2;
            kept += i < rank ? s2 : 0;
        }

        return new LayerRankAllocation(layer.Name, rank, factored, total == 0 ? 1 : kept / total);
    }
}
