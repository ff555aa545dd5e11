// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Tensors;

namespace Compression.Composition;

/// <summary>
/// Runs <see cref="First"/>, then <see cref="Second"/> on the first's reconstruction, handing the first result to the
/// second as <see cref="CompressionContext.Prior"/>: prune, then quantize the survivors (keeping the mask).
/// </summary>
/// <remarks>The result is the second stage's representation; it must carry whatever of the first it keeps (a
/// quantizer that honours <see cref="CompressedTensor.SparsityMask"/> keeps the mask).</remarks>
public sealed class ChainedCompressor : ICompressor
{
    /// <summary>Chains two compressors.</summary>
    public ChainedCompressor(ICompressor first, ICompressor second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        First = first;
        Second = second;
    }

    /// <summary>The stage that sees the original weight.</summary>
    public ICompressor First { get; }

    /// <summary>The stage that sees the first stage's reconstruction.</summary>
    public ICompressor Second { get; }

    /// <inheritdoc/>
    public string Name => $"{First.Name}+{Second.Name}";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => First.Requirements | Second.Requirements;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        CompressedTensor first = First.Compress(weight, context);
        context.CancellationToken.ThrowIfCancellationRequested();
        DenseTensor reconstructed = first.Decompress();
        return Second.Compress(reconstructed, context with { Prior = first });
    }
}
