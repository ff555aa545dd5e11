// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Composition;

namespace Compression.LowRank;

/// <summary>
/// EoRA-style compensation: compress a weight with any compressor (GPTQ, RTN, SparseGPT, …), then add a rank-r
/// correction of the error it left, fitted in the eigenspace of the layer's inputs so that it minimises the
/// layer-output error ‖(W − Ŵ − A·B)·Xᵀ‖_F.
/// </summary>
/// <example>
/// <code>
/// ICompressor gptqPlusEora = Eora.Compensate(new GptqOptions { Format = ... }.CreateCompressor(), rank: 32);
/// CompressedTensor t = gptqPlusEora.Compress(weight, new CompressionContext { InputHessian = hessian });
/// </code>
/// </example>
public static class Eora
{
    /// <summary>A compressor whose result is <paramref name="main"/>'s plus a rank-<paramref name="rank"/> EoRA correction.</summary>
    /// <param name="main">Compresses the weight.</param>
    /// <param name="rank">The correction's rank, at least 1.</param>
    /// <param name="options">Further options of the correction (precision, dampening, solver); its rank and whitening are
    /// replaced. Null for the defaults.</param>
    /// <exception cref="ArgumentNullException"><paramref name="main"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rank"/> is below 1.</exception>
    public static ResidualCompressor Compensate(ICompressor main, int rank, LowRankOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        LowRankOptions correction = (options ?? new LowRankOptions()) with
        {
            Rank = RankRule.Fixed(rank),
            Whitening = ActivationWhitening.Eigen,
        };
        return new ResidualCompressor(main, correction.CreateCompressor());
    }
}
