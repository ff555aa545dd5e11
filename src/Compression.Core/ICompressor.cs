// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Tensors;

namespace Compression;

/// <summary>
/// Compresses one weight matrix: the seam between the algorithm families (quantization, pruning, low-rank,
/// distillation) and everything that drives them (model façades, checkpoint rewriters, composition).
/// </summary>
/// <remarks>
/// <para>The weight is a matrix of <see cref="DenseTensor.Rows"/> = output features by <see cref="DenseTensor.Columns"/>
/// = input features (the <c>nn.Linear</c> layout). Statistics that some algorithms need, such as the input Hessian
/// of GPTQ and SparseGPT, arrive in the <see cref="CompressionContext"/>; <see cref="Requirements"/> says which.</para>
/// <para>Implementations are immutable and thread-safe, never modify <c>weight</c>, validate at this boundary
/// (shape, finiteness, missing statistics: <see cref="System.ArgumentException"/>), and honour
/// <see cref="CompressionContext.CancellationToken"/>.</para>
/// <para>Compressors compose without casts: <see cref="Composition.ChainedCompressor"/> runs one on the other's
/// reconstruction (prune, then quantize the survivors) and <see cref="Composition.ResidualCompressor"/> compresses
/// what the first left behind (quantize, then a low-rank correction of the error).</para>
/// </remarks>
public interface ICompressor
{
    /// <summary>A stable identifier used in reports, recipes and checkpoints, e.g. "rtn", "gptq", "magnitude", "svd".</summary>
    string Name { get; }

    /// <summary>The statistics the caller must put in the context before calling <see cref="Compress"/>.</summary>
    CalibrationRequirements Requirements { get; }

    /// <summary>Compresses <paramref name="weight"/>.</summary>
    /// <param name="weight">The weight matrix, rows = output features; not modified.</param>
    /// <param name="context">Statistics, the previous stage's result, logging, progress and cancellation.</param>
    /// <returns>A representation that reports its storage, reconstructs a dense matrix and serializes itself.</returns>
    /// <exception cref="System.ArgumentException">The weight is not a finite matrix, or a required statistic is missing or
    /// does not match the weight's shape.</exception>
    /// <exception cref="System.OperationCanceledException">The context's token was cancelled.</exception>
    CompressedTensor Compress(DenseTensor weight, CompressionContext context);
}
