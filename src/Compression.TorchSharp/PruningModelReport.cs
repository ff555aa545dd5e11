// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression;

/// <summary>One pruned layer.</summary>
/// <param name="Name">The module name.</param>
/// <param name="Method">The pruner's name (<see cref="ICompressor.Name"/>).</param>
/// <param name="Rows">Output features.</param>
/// <param name="Columns">Input features.</param>
/// <param name="Sparsity">The fraction of the layer's weights pruned.</param>
/// <param name="Objective">‖(W − Ŵ)Xᵀ‖²/n on the calibration inputs when the pruner reports it; NaN otherwise.</param>
/// <param name="Elapsed">Time to prune the layer.</param>
public sealed record LayerPruning(string Name, string Method, int Rows, int Columns, double Sparsity, double Objective, TimeSpan Elapsed)
{
    /// <summary>The pruned weight (mask and kept values).</summary>
    public CompressedTensor? Weight { get; init; }
}

/// <summary>What <see cref="Pruner"/> did to a model.</summary>
/// <param name="Layers">The pruned layers in model order.</param>
/// <param name="Parameters">The model's parameter count.</param>
/// <param name="NonZeroParameters">Parameters that are not zero after pruning (structured pruning also lowers
/// <paramref name="Parameters"/>).</param>
/// <param name="Elapsed">Wall-clock time, calibration included.</param>
/// <param name="Quantization">The quantization of the survivors, when <see cref="PrunerOptions.ThenQuantize"/> was set.</param>
public sealed record PruningModelReport(IReadOnlyList<LayerPruning> Layers, long Parameters, long NonZeroParameters, TimeSpan Elapsed,
    QuantizationReport? Quantization = null)
{
    /// <summary>The fraction of all parameters that are zero.</summary>
    public double ModelSparsity => Parameters == 0 ? 0 : 1 - (double)NonZeroParameters / Parameters;
}
