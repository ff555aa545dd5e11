// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression.LowRank;

/// <summary>What a factorisation did to one matrix.</summary>
/// <param name="Method">The compressor's name ("svd", "svd-llm", "eora").</param>
/// <param name="Rank">The rank kept.</param>
/// <param name="SingularValues">The singular values computed, descending: of W, or of the whitened W·S when the
/// factorisation is activation-aware (every one for the exact SVD, the sketch's for the randomized one).</param>
/// <param name="RetainedEnergy">σ₁² + … + σ_r² over ‖M‖²_F for the matrix M that was truncated (W or W·S): the share of
/// the weight's (or of the layer output's) energy kept.</param>
/// <param name="RelativeError">‖W − A·B‖_F / ‖W‖_F measured on the stored factors (0 for a zero weight).</param>
/// <param name="Elapsed">Time spent.</param>
public sealed record LowRankReport(string Method, int Rank, IReadOnlyList<double> SingularValues, double RetainedEnergy,
    double RelativeError, TimeSpan Elapsed);
