// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization;

/// <summary>
/// One GPTQ sweep, prepared: the weight in processing order with dead columns zeroed and the group layout (U, the
/// upper Cholesky factor of the damped inverse Hessian, comes separately as the engine's <see cref="GptqFactor"/>). The engine fills
/// <see cref="Codes"/>, <see cref="Parameters"/> (dynamic groups) and <see cref="ColumnLosses"/>.
/// </summary>
/// <param name="Format">The element format.</param>
/// <param name="Options">The format's options.</param>
/// <param name="Rows">Rows of the weight.</param>
/// <param name="Columns">Columns of the weight.</param>
/// <param name="Block">Columns per block (a multiple of the group size for per-group scales).</param>
/// <param name="GroupSize">Columns per group (the row length per-channel).</param>
/// <param name="Groups">Groups per row.</param>
/// <param name="Weight">rows × columns, processing order; on return it holds Q, the dequantized codes (as the
/// reference implementation leaves Q in the layer).</param>
/// <param name="GroupOfColumn">Static groups: processing column → group; empty for dynamic groups.</param>
/// <param name="Parameters">rows × groups parameters; filled in advance for static groups.</param>
/// <param name="TensorScale">NVFP4's tensor scale; 1 otherwise.</param>
/// <param name="Codes">rows × columns codes, processing order, one per byte (output).</param>
/// <param name="ColumnLosses">Per processing column, Σ_rows e²/2 (output).</param>
internal sealed record GptqSweepProblem(
    GroupedFormat Format,
    RtnOptions Options,
    int Rows,
    int Columns,
    int Block,
    int GroupSize,
    int Groups,
    float[] Weight,
    int[] GroupOfColumn,
    SegmentParameters[] Parameters,
    float TensorScale,
    byte[] Codes,
    double[] ColumnLosses)
{
    /// <summary>The number of blocks.</summary>
    public int BlockCount => (Columns + Block - 1) / Block;

    /// <summary>
    /// rows × columns, processing order: false where the weight is pruned (the prior stage's
    /// <see cref="CompressedTensor.SparsityMask"/>) and must decode to exactly 0; null without a mask. A pruned weight's
    /// error (its full current value) is fed forward like any other, and a group's parameters are chosen from its values
    /// with the pruned ones at 0.
    /// </summary>
    public bool[]? Keep { get; init; }
}

/// <summary>
/// Where GPTQ's heavy steps run: the block sweep with its lazy updates, and the float64 objective. Everything else
/// (dead inputs, act-order, dampening and the factorization, packing) is shared by <see cref="GptqQuantizer"/>, so the
/// CPU and GPU quantizers differ only here.
/// </summary>
internal abstract class GptqEngine
{
    /// <summary>Names the device in <see cref="GptqReport.Device"/>.</summary>
    public abstract string Device { get; }

    /// <summary>Whether <see cref="Sweep"/> honours <see cref="GptqSweepProblem.Keep"/> (the CPU sweep only; the GPU
    /// kernels have no mask yet).</summary>
    public virtual bool SupportsSparsityMask => false;

    /// <summary>
    /// U, the upper triangular factor with UᵀU = (H + λI)⁻¹ for the symmetric <paramref name="hessian"/> (n × n,
    /// processing order), computed in float64 and kept as float32 for the sweep; null when H + λI is not numerically
    /// positive definite.
    /// </summary>
    public abstract GptqFactor? TryFactorize(double[] hessian, int n, double lambda, System.Threading.CancellationToken cancellationToken);

    /// <summary>Runs the sweep with a factor from <see cref="TryFactorize"/>; reports progress per block and honours
    /// cancellation per block.</summary>
    public abstract void Sweep(GptqSweepProblem problem, GptqFactor factor, CompressionContext context);

    /// <summary>Σ over the rows d of <paramref name="delta"/> (rows × columns) of dᵀ·H·d, in float64.</summary>
    public abstract double SumOfQuadraticForms(double[] delta, int rows, int columns, double[] hessian, System.Threading.CancellationToken cancellationToken);
}

/// <summary>U in an engine's memory (host array, device buffer).</summary>
internal abstract class GptqFactor : IDisposable
{
    /// <summary>Releases device memory; nothing for host factors.</summary>
    public virtual void Dispose()
    {
    }
}
