// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Tensors;

namespace Compression.Distillation;

/// <summary>
/// Runs an inner compressor, then fits the continuous parameters of its result (scales, low-rank factors, kept values)
/// to the layer's calibration inputs with <see cref="LayerReconstructor"/>: the same kind, codes, masks and storage,
/// a lower output error.
/// </summary>
/// <remarks>
/// <para>It is an ordinary <see cref="ICompressor"/>, so it composes: <c>new ResidualCompressor(new
/// ReconstructingCompressor(rtn), lowRank)</c> fits the scales before the correction sees the error;
/// <c>new ReconstructingCompressor(new ResidualCompressor(gptq, lowRank))</c> fits scales and factors jointly;
/// <c>new ReconstructingCompressor(new ChainedCompressor(prune, quantize))</c> fits the scales of the sparse
/// quantized result, its mask unchanged.</para>
/// <para>The inner result must implement <see cref="ITunableTensor"/> with at least one parameter; otherwise
/// <see cref="Compress"/> throws <see cref="ArgumentException"/> (e.g. MX formats, whose E8M0 scales are powers of
/// two).</para>
/// </remarks>
/// <example>
/// <code>
/// var compressor = new ReconstructingCompressor(new RoundToNearestQuantizer(RtnOptions.W4Group128));
/// var context = CompressionContext.Default with { InputHessian = hessian };
/// LayerReconstructionResult fit = compressor.Reconstruct(weight, context);   // or Compress for the tensor alone
/// </code>
/// </example>
public sealed class ReconstructingCompressor : ICompressor
{
    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The compressor whose result is fitted.</param>
    /// <param name="options">Null for <see cref="LayerReconstructionOptions.Default"/>.</param>
    public ReconstructingCompressor(ICompressor inner, LayerReconstructionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Inner = inner;
        Options = options ?? LayerReconstructionOptions.Default;
    }

    /// <summary>The compressor whose result is fitted.</summary>
    public ICompressor Inner { get; }

    /// <summary>The fit's options.</summary>
    public LayerReconstructionOptions Options { get; }

    /// <inheritdoc/>
    public string Name => $"{Inner.Name}+reconstruct";

    /// <summary>The inner compressor's requirements plus <see cref="CalibrationRequirements.InputHessian"/>.</summary>
    public CalibrationRequirements Requirements => Inner.Requirements | CalibrationRequirements.InputHessian;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">As <see cref="ICompressor.Compress"/>, or the inner result has no continuous
    /// parameters.</exception>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context) => Reconstruct(weight, context).Tensor;

    /// <summary>Compresses with the inner compressor and fits the result, returning the fit's figures with the tensor.</summary>
    /// <exception cref="ArgumentException">The weight is not a finite matrix; the Hessian is missing or of another width;
    /// the inner result has no continuous parameters.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public LayerReconstructionResult Reconstruct(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        CompressedTensor inner = Inner.Compress(weight, context);
        context.CancellationToken.ThrowIfCancellationRequested();
        return LayerReconstructor.Fit(weight, inner, context, Options);
    }
}
