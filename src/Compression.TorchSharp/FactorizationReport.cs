// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using Compression.LowRank;

namespace Compression;

/// <summary>One layer <see cref="Factorizer"/> considered.</summary>
/// <param name="Name">The module name.</param>
/// <param name="Rows">Output features.</param>
/// <param name="Columns">Input features.</param>
/// <param name="Rank">The rank kept, or null when the layer stayed dense (a global budget found no saving in it).</param>
/// <param name="Parameters">Weights after: (rows + columns)·rank, or rows·columns when dense.</param>
/// <param name="RetainedEnergy">The share of the (whitened, when activation-aware) spectrum's energy kept; 1 when dense.</param>
/// <param name="RelativeError">‖W − A·B‖_F / ‖W‖_F (of the base compressor's error E − A·B over E when there is a
/// base); 0 when dense.</param>
/// <param name="Elapsed">Time to factorise the layer.</param>
public sealed record LayerFactorization(string Name, int Rows, int Columns, int? Rank, long Parameters, double RetainedEnergy,
    double RelativeError, TimeSpan Elapsed)
{
    /// <summary>The factors (of the weight, or of the base compressor's error); null when the layer stayed dense.</summary>
    public LowRankTensor? Weight { get; init; }

    /// <summary>The layer's whole compressed weight: the factors, or the base compressor's result plus them
    /// (a <see cref="Composition.ResidualTensor"/>); null when the layer stayed dense.</summary>
    public CompressedTensor? Compressed { get; init; }
}

/// <summary>What <see cref="Factorizer"/> did to a model.</summary>
/// <param name="Layers">Every targeted layer in model order, factorised or kept dense.</param>
/// <param name="ParametersBefore">The model's parameter count before.</param>
/// <param name="ParametersAfter">Its parameter count after (equal to before when modules were not replaced).</param>
/// <param name="Elapsed">Wall-clock time, calibration included.</param>
public sealed record FactorizationReport(IReadOnlyList<LayerFactorization> Layers, long ParametersBefore, long ParametersAfter, TimeSpan Elapsed)
{
    /// <summary>ParametersAfter / ParametersBefore.</summary>
    public double ParameterRatio => ParametersBefore == 0 ? 1 : (double)ParametersAfter / ParametersBefore;
}
