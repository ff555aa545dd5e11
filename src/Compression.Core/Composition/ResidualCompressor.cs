// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using Compression.Tensors;

namespace Compression.Composition;

/// <summary>
/// Compresses the weight with <see cref="Main"/>, then compresses the error it left, <c>W − Ŵ</c>, with
/// <see cref="Correction"/>; the result is their <see cref="ResidualTensor"/> sum (quantize, then a low-rank
/// correction of the quantization error, as LoRC and EoRA do).
/// </summary>
public sealed class ResidualCompressor : ICompressor
{
    /// <summary>Combines a main compressor with one for its residual.</summary>
    public ResidualCompressor(ICompressor main, ICompressor correction)
    {
        ArgumentNullException.ThrowIfNull(main);
        ArgumentNullException.ThrowIfNull(correction);
        Main = main;
        Correction = correction;
    }

    /// <summary>The compressor of the weight.</summary>
    public ICompressor Main { get; }

    /// <summary>The compressor of the residual error.</summary>
    public ICompressor Correction { get; }

    /// <inheritdoc/>
    public string Name => $"{Main.Name}|{Correction.Name}";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => Main.Requirements | Correction.Requirements;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        CompressedTensor main = Main.Compress(weight, context);
        context.CancellationToken.ThrowIfCancellationRequested();
        DenseTensor residual = main.Decompress();
        TensorPrimitives.Subtract(weight.Span, residual.Span, residual.Span);
        CompressedTensor correction = Correction.Compress(residual, context with { Prior = main });
        return new ResidualTensor(main, correction);
    }
}
