// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics;
using System.Numerics.Tensors;
using System.Threading;
using System.Threading.Tasks;
using Compression.Quantization.Primitives;
using Compression.Tensors;

namespace Compression.Quantization.Rotation;

/// <summary>
/// The fast Walsh–Hadamard transform, normalized: in place, O(n log n), orthonormal and its own inverse.
/// </summary>
/// <remarks>
/// <para>The matrix is Sylvester's, H₁ = [1], H₂ₙ = [[Hₙ, Hₙ], [Hₙ, −Hₙ]], divided by √n: entry (i, j) is
/// (−1)^popcount(i AND j) / √n. It is symmetric, so the transform, its transpose and its inverse are one operation.</para>
/// <para>Order of operations (the contract that makes the CPU and GPU results identical): stages of stride
/// h = 1, 2, 4, …, n/2, each replacing (a, b) at positions (j, j + h) by (a + b, a − b) in float32 (or float64), then
/// one multiplication of every element by the float32 (float64) value nearest to 1/√n. For n a power of four the
/// scale is a power of two and exact; otherwise it adds one rounding.</para>
/// <para>Non-finite values are not rejected: a NaN or ±∞ makes every element of its block NaN or infinite (each output
/// sums every input of the block), and no other block.</para>
/// <para>Used for the block-wise rotations of MR-GPTQ ("Bridging the Gap Between Promise and Performance for
/// Microscaling FP4 Quantization", Egiazarian et al., 2025) through <see cref="HadamardRotation"/>.</para>
/// </remarks>
/// <example>
/// <code>
/// float[] x = [1, 2, 3, 4];
/// WalshHadamard.Transform(x);   // [5, -1, -2, 0]
/// WalshHadamard.Transform(x);   // [1, 2, 3, 4] again
/// </code>
/// </example>
public static class WalshHadamard
{
    /// <summary>Elements per parallel task: enough to pay for scheduling, few enough to keep both cores busy.</summary>
    private const int ParallelGrain = 1 << 16;

    /// <summary>The float32 scale 1/√n the transform multiplies by (correctly rounded from float64).</summary>
    public static float SingleScale(int n) => (float)(1.0 / Math.Sqrt(n));

    /// <summary>The float64 scale 1/√n the transform multiplies by.</summary>
    public static double DoubleScale(int n) => 1.0 / Math.Sqrt(n);

    /// <summary>Transforms <paramref name="values"/> in place as one block.</summary>
    /// <exception cref="ArgumentException">The length is not a power of two.</exception>
    public static void Transform(Span<float> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        CheckBlockSize(values.Length, nameof(values));
        HadamardPrimitives.Blocks(values, values.Length, SingleScale(values.Length));
    }

    /// <summary>Transforms <paramref name="values"/> in place as one block, in float64.</summary>
    /// <exception cref="ArgumentException">The length is not a power of two.</exception>
    public static void Transform(Span<double> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        CheckBlockSize(values.Length, nameof(values));
        HadamardPrimitives.Blocks(values, values.Length, DoubleScale(values.Length));
    }

    /// <summary>Transforms every consecutive block of <paramref name="blockSize"/> elements of <paramref name="values"/>
    /// in place: the block-diagonal transform diag(H_b, H_b, …). Single-threaded; see <see cref="TransformBlocks(DenseTensor, int)"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="blockSize"/> is not a power of two, or does not divide the length.</exception>
    public static void TransformBlocks(Span<float> values, int blockSize)
    {
        CheckBlocks(values.Length, blockSize, nameof(values));
        HadamardPrimitives.Blocks(values, blockSize, SingleScale(blockSize));
    }

    /// <summary>Float64 form of <see cref="TransformBlocks(Span{float}, int)"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="blockSize"/> is not a power of two, or does not divide the length.</exception>
    public static void TransformBlocks(Span<double> values, int blockSize)
    {
        CheckBlocks(values.Length, blockSize, nameof(values));
        HadamardPrimitives.Blocks(values, blockSize, DoubleScale(blockSize));
    }

    /// <summary>Transforms every row of a matrix in place, block by block along the columns, with the rows shared
    /// among threads. Bit-identical to <see cref="TransformBlocks(Span{float}, int)"/> on each row.</summary>
    /// <exception cref="ArgumentException"><paramref name="blockSize"/> is not a power of two, or does not divide the column count.</exception>
    public static void TransformBlocks(DenseTensor matrix, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        CheckBlocks(matrix.Columns, blockSize, nameof(matrix));
        InParallel(matrix.Memory, blockSize);
    }

    /// <summary>Transforms <paramref name="data"/> (a whole number of blocks) on all cores. Blocks never cross rows
    /// because the block size divides the row length, so the rows need not be known.</summary>
    internal static void InParallel(Memory<float> data, int blockSize) => InParallel(data, blockSize, null, null);

    /// <summary>
    /// <see cref="InParallel(Memory{float}, int)"/> on rows of <c>signs.Length</c> columns, with each element multiplied
    /// by its column's ±1 before (<paramref name="signsBefore"/>) or after (<paramref name="signsAfter"/>) the transform:
    /// the randomized rotations, in one pass over memory per chunk.
    /// </summary>
    internal static void InParallel(Memory<float> data, int blockSize, float[]? signsBefore, float[]? signsAfter,
        CancellationToken cancellationToken = default)
    {
        float scale = SingleScale(blockSize);
        int columns = (signsBefore ?? signsAfter)?.Length ?? blockSize;
        // Whole rows per task when signs are applied, so a task's first element is column 0.
        int unit = signsBefore is null && signsAfter is null ? blockSize : columns;
        int chunk = Math.Max(unit, ParallelGrain / unit * unit);
        int tasks = (data.Length + chunk - 1) / chunk;
        if (tasks <= 1)
        {
            Chunk(data.Span, blockSize, scale, signsBefore, signsAfter);
            return;
        }

        // The token is checked before each chunk (about 64 Ki values); Parallel.For throws the exception itself.
        Parallel.For(0, tasks, new ParallelOptions { CancellationToken = cancellationToken }, t =>
        {
            int start = t * chunk;
            Chunk(data.Span.Slice(start, Math.Min(chunk, data.Length - start)), blockSize, scale, signsBefore, signsAfter);
        });
    }

    private static void Chunk(Span<float> rows, int blockSize, float scale, float[]? signsBefore, float[]? signsAfter)
    {
        if (signsBefore is null && signsAfter is null)
        {
            HadamardPrimitives.Blocks(rows, blockSize, scale);
            return;
        }

        int columns = (signsBefore ?? signsAfter)!.Length;
        for (int start = 0; start < rows.Length; start += columns)
        {
            Span<float> row = rows.Slice(start, columns);
            if (signsBefore is not null)
            {
                // ±1: the product is exact, a sign flip.
                TensorPrimitives.Multiply(row, signsBefore, row);
            }

            HadamardPrimitives.Blocks(row, blockSize, scale);
            if (signsAfter is not null)
            {
                TensorPrimitives.Multiply(row, signsAfter, row);
            }
        }
    }

    /// <summary>Float64 form of <see cref="InParallel(Memory{float}, int)"/>.</summary>
    internal static void InParallel(Memory<double> data, int blockSize)
    {
        double scale = DoubleScale(blockSize);
        int chunk = Math.Max(blockSize, ParallelGrain / 2 / blockSize * blockSize);
        int tasks = (data.Length + chunk - 1) / chunk;
        if (tasks <= 1)
        {
            HadamardPrimitives.Blocks(data.Span, blockSize, scale);
            return;
        }

        Parallel.For(0, tasks, t =>
        {
            int start = t * chunk;
            HadamardPrimitives.Blocks(data.Span.Slice(start, Math.Min(chunk, data.Length - start)), blockSize, scale);
        });
    }

    internal static void CheckBlockSize(int blockSize, string parameter)
    {
        if (blockSize < 1 || !BitOperations.IsPow2(blockSize))
        {
            throw new ArgumentException($"The Hadamard block size must be a power of two; got {blockSize}.", parameter);
        }
    }

    private static void CheckBlocks(int length, int blockSize, string parameter)
    {
        CheckBlockSize(blockSize, nameof(blockSize));
        if (length % blockSize != 0)
        {
            throw new ArgumentException($"Length {length} is not a multiple of the Hadamard block size {blockSize}.", parameter);
        }
    }
}
