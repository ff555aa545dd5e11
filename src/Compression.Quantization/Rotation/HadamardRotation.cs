// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using System.Threading;
using System.Threading.Tasks;
using Compression.Quantization.Formats;
using Compression.Quantization.Primitives;
using Compression.Tensors;

namespace Compression.Quantization.Rotation;

/// <summary>
/// A block-diagonal orthonormal rotation of a linear layer's input space, R = diag(H_b, …, H_b)·D, with H_b the
/// normalized Sylvester–Hadamard matrix of order b (<see cref="WalshHadamard"/>) and D a diagonal of ±1 (the identity
/// unless a sign seed is given): the rotation of MR-GPTQ.
/// </summary>
/// <remarks>
/// <para>For a layer y = W·x (W is rows × columns, PyTorch's [out, in]), rotating the inputs x′ = R·x and the weight
/// W′ = W·Rᵀ leaves the output unchanged, W′·x′ = W·Rᵀ·R·x = W·x, and the input Hessian of GPTQ becomes
/// H′ = R·H·Rᵀ. Quantizing W′ spreads each block's outliers over its b weights, which suits formats whose scale
/// group is the block (b = 16 for NVFP4, 32 for MXFP4): "Bridging the Gap Between Promise and Performance for
/// Microscaling FP4 Quantization" (Egiazarian et al., 2025). At inference R is applied to the activations.</para>
/// <para>The random signs are QuaRot's and QuIP#'s randomized Hadamard transform. Column j's sign is a fixed function
/// of (seed, j), SplitMix64 of seed + (j + 1)·0x9E3779B97F4A7C15 and its top bit (<see cref="Sign"/>), so
/// <see cref="Parameters"/> (block size and seed) is all a checkpoint needs, whatever the layer's width.</para>
/// <para>Weights and Hessians must be finite (they are checked: a non-finite value would silently spoil its whole
/// block); activations are not checked, being the inference hot path, and a NaN or ±∞ there spoils only its own
/// block of its own sample.</para>
/// </remarks>
/// <example>
/// <code>
/// var rotation = HadamardRotation.ForFormat(NumberFormat.FromName("mxfp4"));   // blocks of 32
/// DenseTensor rotated = rotation.RotateWeight(weight);                          // W·Rᵀ, quantize this
/// double[] hessian = rotation.RotateHessian(h, weight.Columns);                 // R·H·Rᵀ, for GPTQ
/// // checkpoint metadata: rotation.Parameters.ToMetadata("model.layers.0.mlp.down_proj.")
/// </code>
/// </example>
public sealed class HadamardRotation
{
    /// <summary>Creates a rotation with blocks of <paramref name="blockSize"/>.</summary>
    /// <param name="blockSize">A power of two, at least 2; it must divide the column count of what is rotated.</param>
    /// <param name="signSeed">Seed of the random ±1 diagonal D; null (the default) for none.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="blockSize"/> is not a power of two ≥ 2.</exception>
    public HadamardRotation(int blockSize, long? signSeed = null)
        : this(new HadamardRotationParameters(blockSize, signSeed))
    {
    }

    /// <summary>Creates the rotation a checkpoint described.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The block size is not a power of two ≥ 2.</exception>
    public HadamardRotation(HadamardRotationParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        parameters.Validate();
        Parameters = parameters;
    }

    /// <summary>The block size and sign seed, for checkpoints.</summary>
    public HadamardRotationParameters Parameters { get; }

    /// <summary>The Hadamard block size b.</summary>
    public int BlockSize => Parameters.BlockSize;

    /// <summary>The seed of the sign flips, or null when D is the identity.</summary>
    public long? SignSeed => Parameters.SignSeed;

    /// <summary>The rotation MR-GPTQ pairs with a block-scaled format: blocks of the format's group (16 for NVFP4,
    /// 32 for MX formats).</summary>
    /// <exception cref="ArgumentException">The format has no fixed power-of-two block; construct with an explicit size.</exception>
    public static HadamardRotation ForFormat(NumberFormat format, long? signSeed = null)
    {
        ArgumentNullException.ThrowIfNull(format);
        return format switch
        {
            Nvfp4Format => new HadamardRotation(Nvfp4Format.BlockSize, signSeed),
            MicroscalingFormat => new HadamardRotation(MicroscalingFormat.BlockSize, signSeed),
            _ => throw new ArgumentException($"{format.Name} has no fixed scale block; choose the Hadamard block size explicitly.", nameof(format)),
        };
    }

    /// <summary>Entry j of the diagonal D: +1 or −1 (always +1 without a seed).</summary>
    public float Sign(int column) => SignSeed is long seed && HadamardSigns.IsNegative(seed, column) ? -1f : 1f;

    /// <summary>Returns W·Rᵀ (a new tensor; <paramref name="weight"/> is unchanged): each row w becomes R·w.</summary>
    /// <exception cref="ArgumentException">The column count is not a multiple of <see cref="BlockSize"/>, or the weight holds NaN or ±∞.</exception>
    public DenseTensor RotateWeight(DenseTensor weight) => RotateWeight(weight, CancellationToken.None);

    /// <summary>Returns W·Rᵀ like <see cref="RotateWeight(DenseTensor)"/>, checking <paramref name="cancellationToken"/>
    /// between chunks of rows (about 64 Ki values each).</summary>
    /// <exception cref="ArgumentException">The column count is not a multiple of <see cref="BlockSize"/>, or the weight holds NaN or ±∞.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; <paramref name="weight"/> is unchanged and
    /// the partial result is dropped.</exception>
    public DenseTensor RotateWeight(DenseTensor weight, CancellationToken cancellationToken)
    {
        CheckMatrix(weight, nameof(weight), checkFinite: true);
        cancellationToken.ThrowIfCancellationRequested();
        DenseTensor result = weight.Clone();
        WalshHadamard.InParallel(result.Memory, BlockSize, Signs(result.Columns), null, cancellationToken);
        return result;
    }

    /// <summary>Returns W′·R, undoing <see cref="RotateWeight(DenseTensor)"/> (up to rounding): each row w′ becomes Rᵀ·w′ = D·H·w′.</summary>
    /// <exception cref="ArgumentException">The column count is not a multiple of <see cref="BlockSize"/>, or the weight holds NaN or ±∞.</exception>
    public DenseTensor UnrotateWeight(DenseTensor weight) => UnrotateWeight(weight, CancellationToken.None);

    /// <summary>Returns W′·R like <see cref="UnrotateWeight(DenseTensor)"/>, checking
    /// <paramref name="cancellationToken"/> between chunks of rows (about 64 Ki values each).</summary>
    /// <exception cref="ArgumentException">The column count is not a multiple of <see cref="BlockSize"/>, or the weight holds NaN or ±∞.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; <paramref name="weight"/> is unchanged and
    /// the partial result is dropped.</exception>
    public DenseTensor UnrotateWeight(DenseTensor weight, CancellationToken cancellationToken)
    {
        CheckMatrix(weight, nameof(weight), checkFinite: true);
        cancellationToken.ThrowIfCancellationRequested();
        DenseTensor result = weight.Clone();
        WalshHadamard.InParallel(result.Memory, BlockSize, null, Signs(result.Columns), cancellationToken);
        return result;
    }

    /// <summary>Returns the activations rotated: each row (one sample x) becomes R·x, i.e. the matrix X·Rᵀ. Not
    /// checked for finiteness (see the remarks).</summary>
    /// <exception cref="ArgumentException">The column count is not a multiple of <see cref="BlockSize"/>.</exception>
    public DenseTensor RotateActivations(DenseTensor activations)
    {
        CheckMatrix(activations, nameof(activations), checkFinite: false);
        DenseTensor result = activations.Clone();
        RotateActivationsInPlace(result);
        return result;
    }

    /// <summary><see cref="RotateActivations"/> in place, without allocating the result (inference).</summary>
    /// <exception cref="ArgumentException">The column count is not a multiple of <see cref="BlockSize"/>.</exception>
    public void RotateActivationsInPlace(DenseTensor activations)
    {
        CheckMatrix(activations, nameof(activations), checkFinite: false);
        WalshHadamard.InParallel(activations.Memory, BlockSize, Signs(activations.Columns), null);
    }

    /// <summary>Returns R·H·Rᵀ for an n × n row-major matrix (the GPTQ input Hessian), in float64: R applied to every
    /// row (H·Rᵀ), then along every column.</summary>
    /// <exception cref="ArgumentException">The length is not n², <see cref="BlockSize"/> does not divide n, or a value is NaN or ±∞.</exception>
    public double[] RotateHessian(ReadOnlySpan<double> hessian, int n)
    {
        if (n < 0 || (long)n * n != hessian.Length)
        {
            throw new ArgumentException($"The Hessian holds {hessian.Length} values; an {n} × {n} matrix needs {(long)n * n}.", nameof(hessian));
        }

        CheckColumns(n, nameof(n));
        if (!hessian.IsEmpty && !double.IsFinite(TensorPrimitives.MaxMagnitude(hessian)))
        {
            int index = IndexOfNonFinite(hessian);
            throw new ArgumentException($"The Hessian holds {hessian[index]} at ({index / n}, {index % n}); it must be finite.", nameof(hessian));
        }

        double[] result = hessian.ToArray();
        double[]? signs = null;
        if (SignSeed is not null)
        {
            signs = new double[n];
            for (int j = 0; j < n; j++)
            {
                signs[j] = Sign(j);
            }
        }

        int b = BlockSize;
        double scale = WalshHadamard.DoubleScale(b);
        // Rows: each row h_i becomes R·h_i, giving H·Rᵀ.
        Parallel.For(0, n, i =>
        {
            Span<double> row = result.AsSpan(i * n, n);
            if (signs is not null)
            {
                TensorPrimitives.Multiply(row, signs, row);
            }

            HadamardPrimitives.Blocks(row, b, scale);
        });

        // Columns: R·(H·Rᵀ), butterflies between whole rows of each block of b rows, in column strips that keep the
        // block's b rows in cache.
        int strip = Math.Max(64, 32768 / b);
        int strips = (n + strip - 1) / strip, blocks = n / b;
        Parallel.For(0, blocks * strips, task =>
        {
            int block = task / strips, first = task % strips * strip, count = Math.Min(strip, n - first);
            Span<double> all = result;
            if (signs is not null)
            {
                for (int r = block * b; r < (block + 1) * b; r++)
                {
                    Span<double> segment = all.Slice(r * n + first, count);
                    TensorPrimitives.Multiply(segment, signs[r], segment);
                }
            }

            HadamardPrimitives.AcrossRows(all, n, block * b, b, first, count, scale);
        });
        return result;
    }

    /// <summary>The diagonal of D as float32 ±1 for <paramref name="columns"/> columns, or null without a seed.</summary>
    internal float[]? Signs(int columns)
    {
        if (SignSeed is not long seed)
        {
            return null;
        }

        var signs = new float[columns];
        for (int j = 0; j < columns; j++)
        {
            signs[j] = HadamardSigns.IsNegative(seed, j) ? -1f : 1f;
        }

        return signs;
    }

    /// <summary>Checks that <paramref name="matrix"/> can be rotated: a column count divisible by the block size and,
    /// for weights, finite values.</summary>
    internal void CheckMatrix(DenseTensor matrix, string parameter, bool checkFinite)
    {
        ArgumentNullException.ThrowIfNull(matrix, parameter);
        CheckColumns(matrix.Columns, parameter);
        // MaxMagnitude is NaN when any element is NaN and infinite when any is infinite: one SIMD pass for both.
        if (checkFinite && matrix.Length > 0 && !float.IsFinite(TensorPrimitives.MaxMagnitude(matrix.Span)))
        {
            int index = IndexOfNonFinite(matrix.Span);
            throw new ArgumentException(
                $"The weight holds {matrix.Span[index]} at ({index / matrix.Columns}, {index % matrix.Columns}); a rotated weight must be finite.", parameter);
        }
    }

    private void CheckColumns(int columns, string parameter)
    {
        if (columns % BlockSize != 0)
        {
            throw new ArgumentException(
                $"The matrix has {columns} columns; the Hadamard block size {BlockSize} must divide it (pad the input dimension or choose a smaller power of two).",
                parameter);
        }
    }

    private static int IndexOfNonFinite<T>(ReadOnlySpan<T> values)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!T.IsFinite(values[i]))
            {
                return i;
            }
        }

        return 0;
    }
}
