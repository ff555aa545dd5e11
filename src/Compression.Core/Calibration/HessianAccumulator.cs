// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Threading;
using System.Threading.Tasks;
using Compression.Tensors;

namespace Compression.Calibration;

/// <summary>
/// Streams a layer's input activations into its Hessian <c>H = (2/n)·Σ xᵢxᵢᵀ = 2·XᵀX/n</c>, the statistic shared by
/// GPTQ, SparseGPT and activation-aware SVD, without ever holding more than one batch of activations.
/// </summary>
/// <remarks>
/// <para>The accumulator keeps the running mean <c>M = XᵀX/n</c> (so <c>H = 2M</c>). A batch B of b rows updates it as
/// <c>M ← M·n/(n+b) + BᵀB/(n+b)</c>: the stored values stay of the order of one product, never growing with n, which
/// is the numerically stable form (the reference GPTQ code uses the same rescaling).</para>
/// <para>Only the upper triangle is accumulated; readers get the full symmetric matrix. Each batch costs
/// c²·b/2 multiply-adds, spread over the cores by rows of H; every entry is one dot product in a fixed order, so the
/// bits do not depend on the number of cores.</para>
/// <para>Not thread-safe for writes: <see cref="Add(DenseTensor)"/>, <see cref="Merge"/> and <see cref="Reset"/> need
/// one caller at a time and no concurrent readers; reads (<see cref="GetHessian"/>, <see cref="CopyHessianTo(Span{double})"/>,
/// <see cref="GetDiagonal"/>) may run on several threads at once when nothing writes. To accumulate in parallel, give
/// each thread its own accumulator and combine them with <see cref="Merge"/>.</para>
/// <para>Cancellation: an <c>Add</c> whose token is already cancelled changes nothing; one cancelled while it runs
/// (checked per row of H, about c·b multiply-adds) leaves the sums partly updated, so the accumulator then refuses every
/// member but <see cref="Reset"/> with an <see cref="InvalidOperationException"/>.</para>
/// </remarks>
/// <example>
/// <code>
/// var hessian = new HessianAccumulator(columns: 4096);
/// foreach (DenseTensor batch in activations)      // [tokens, 4096] or [batch, seq, 4096]
/// {
///     hessian.Add(batch);
/// }
/// double[] h = hessian.GetHessian();              // 4096 × 4096, row-major
/// </code>
/// </example>
public sealed class HessianAccumulator
{
    private readonly double[]? _meanDouble;
    private readonly float[]? _meanSingle;

    // Set while an Add is updating the sums; still set after one was interrupted (cancelled) half-way.
    private bool _interrupted;

    /// <summary>Creates an empty accumulator for inputs of <paramref name="columns"/> features.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="columns"/> is not positive, or c² exceeds one array.</exception>
    public HessianAccumulator(int columns, HessianAccumulatorOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if ((long)columns * columns > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(columns), columns, $"A {columns}×{columns} Hessian exceeds the largest array.");
        }

        Options = options ?? HessianAccumulatorOptions.Default;
        Columns = columns;
        if (Options.Precision == AccumulationPrecision.Double)
        {
            _meanDouble = new double[columns * columns];
        }
        else
        {
            _meanSingle = new float[columns * columns];
        }
    }

    /// <summary>The options it was created with.</summary>
    public HessianAccumulatorOptions Options { get; }

    /// <summary>The number of input features c (H is c × c).</summary>
    public int Columns { get; }

    /// <summary>Elements per internal chunk of a batch (tests lower it to exercise chunking on small inputs).</summary>
    internal int ChunkElementBudget { get; set; } = 1 << 22;

    /// <summary>The number of activation rows (tokens) seen.</summary>
    public long SampleCount { get; private set; }

    /// <summary>Adds a batch of activations: the rows of a tensor whose last dimension is <see cref="Columns"/>.</summary>
    /// <exception cref="ArgumentException">The last dimension differs from <see cref="Columns"/>, or a value is NaN or infinite.</exception>
    public void Add(DenseTensor activations) => Add(activations, CancellationToken.None);

    /// <summary>Adds a batch of activations, checking <paramref name="cancellationToken"/> once per row of H.</summary>
    /// <exception cref="ArgumentException">The last dimension differs from <see cref="Columns"/>, or a value is NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; if it was cancelled before the call the
    /// accumulator is unchanged, otherwise it must be <see cref="Reset"/> before further use.</exception>
    /// <exception cref="InvalidOperationException">An earlier Add was cancelled half-way and the accumulator was not
    /// reset since.</exception>
    public void Add(DenseTensor activations, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(activations);
        if (activations.Rank == 0 || activations.Columns != Columns)
        {
            throw new ArgumentException(
                $"Activations of shape [{string.Join(", ", activations.Shape.ToArray())}] do not end in {Columns} features.", nameof(activations));
        }

        Add(activations.Span, activations.Rows, cancellationToken);
    }

    /// <summary>Adds <paramref name="rows"/> activation rows stored row-major in <paramref name="activations"/>.</summary>
    /// <remarks>A batch of zero rows changes nothing.</remarks>
    /// <exception cref="ArgumentException">The length is not rows × <see cref="Columns"/>, or a value is NaN or infinite.</exception>
    public void Add(ReadOnlySpan<float> activations, int rows) => Add(activations, rows, CancellationToken.None);

    /// <summary>Adds <paramref name="rows"/> activation rows stored row-major in <paramref name="activations"/>,
    /// checking <paramref name="cancellationToken"/> once per row of H.</summary>
    /// <remarks>A batch of zero rows changes nothing.</remarks>
    /// <exception cref="ArgumentException">The length is not rows × <see cref="Columns"/>, or a value is NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; if it was cancelled before the call the
    /// accumulator is unchanged, otherwise it must be <see cref="Reset"/> before further use.</exception>
    /// <exception cref="InvalidOperationException">An earlier Add was cancelled half-way and the accumulator was not
    /// reset since.</exception>
    public void Add(ReadOnlySpan<float> activations, int rows, CancellationToken cancellationToken)
    {
        ThrowIfInterrupted();
        cancellationToken.ThrowIfCancellationRequested();
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        if (activations.Length != (long)rows * Columns)
        {
            throw new ArgumentException($"Expected {rows}×{Columns} = {(long)rows * Columns} values, got {activations.Length}.", nameof(activations));
        }

        if (rows == 0)
        {
            return;
        }

        // One NaN would poison every entry of its row and column of H; reject it here, where the caller can still
        // tell which batch was bad.
        if (!float.IsFinite(TensorPrimitives.MaxMagnitude(activations)))
        {
            int index = IndexOfNonFinite(activations);
            throw new ArgumentException(
                $"The activations hold {activations[index]} at ({index / Columns}, {index % Columns}) of a {rows}×{Columns} batch; activations must be finite.",
                nameof(activations));
        }

        // Long batches go in chunks so the transposed copy stays small (about 32 MB) whatever the caller passes.
        int chunkRows = Math.Max(1, Math.Min(rows, ChunkElementBudget / Columns));
        _interrupted = true;
        for (int start = 0; start < rows; start += chunkRows)
        {
            int count = Math.Min(chunkRows, rows - start);
            long total = SampleCount + count;
            double keep = (double)SampleCount / total;
            double add = 1.0 / total;
            ReadOnlySpan<float> chunk = activations.Slice(start * Columns, count * Columns);
            if (_meanDouble is not null)
            {
                Accumulate(chunk, count, _meanDouble, keep, add, cancellationToken);
            }
            else
            {
                Accumulate(chunk, count, _meanSingle!, (float)keep, (float)add, cancellationToken);
            }

            SampleCount = total;
        }

        _interrupted = false;
    }

    /// <summary>Folds another accumulator of the same width into this one, as if its batches had been added here.</summary>
    /// <exception cref="ArgumentException">The widths differ.</exception>
    public void Merge(HessianAccumulator other)
    {
        ArgumentNullException.ThrowIfNull(other);
        ThrowIfInterrupted();
        other.ThrowIfInterrupted();
        if (other.Columns != Columns)
        {
            throw new ArgumentException($"Cannot merge a {other.Columns}-column accumulator into a {Columns}-column one.", nameof(other));
        }

        if (other.SampleCount == 0)
        {
            return;
        }

        long total = SampleCount + other.SampleCount;
        double keep = (double)SampleCount / total, add = (double)other.SampleCount / total;
        double[] theirs = other.GetMean();
        for (int i = 0; i < Columns; i++)
        {
            for (int j = i; j < Columns; j++)
            {
                int index = i * Columns + j;
                if (_meanDouble is not null)
                {
                    _meanDouble[index] = _meanDouble[index] * keep + theirs[index] * add;
                }
                else
                {
                    _meanSingle![index] = (float)(_meanSingle[index] * keep + theirs[index] * add);
                }
            }
        }

        SampleCount = total;
    }

    /// <summary>Forgets every sample.</summary>
    public void Reset()
    {
        if (_meanDouble is not null)
        {
            Array.Clear(_meanDouble);
        }
        else
        {
            Array.Clear(_meanSingle!);
        }

        SampleCount = 0;
        _interrupted = false;
    }

    /// <summary>The Hessian <c>2·XᵀX/n</c> as a new c × c row-major array (zeros before any sample).</summary>
    public double[] GetHessian()
    {
        var result = new double[Columns * Columns];
        CopyHessianTo(result);
        return result;
    }

    /// <summary>Writes the Hessian <c>2·XᵀX/n</c>, full and symmetric, row-major, into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> does not hold exactly c² values.</exception>
    public void CopyHessianTo(Span<double> destination)
    {
        CopyMeanTo(destination);
        TensorPrimitives.Multiply(destination, 2.0, destination);
    }

    /// <summary>Writes the Hessian in float32 (for solvers that work in single precision).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> does not hold exactly c² values.</exception>
    public void CopyHessianTo(Span<float> destination)
    {
        double[] full = GetHessian();
        if (destination.Length != full.Length)
        {
            throw new ArgumentException($"Destination holds {destination.Length} values; the Hessian has {full.Length}.", nameof(destination));
        }

        for (int i = 0; i < full.Length; i++)
        {
            destination[i] = (float)full[i];
        }
    }

    /// <summary>The diagonal of the Hessian, <c>H_jj = 2·‖X_j‖²/n</c> (Wanda's activation norms are <c>sqrt(n·H_jj/2)</c>).</summary>
    public double[] GetDiagonal()
    {
        ThrowIfInterrupted();
        var diagonal = new double[Columns];
        for (int i = 0; i < Columns; i++)
        {
            diagonal[i] = 2.0 * (_meanDouble is not null ? _meanDouble[i * Columns + i] : _meanSingle![i * Columns + i]);
        }

        return diagonal;
    }

    private double[] GetMean()
    {
        var mean = new double[Columns * Columns];
        CopyMeanTo(mean);
        return mean;
    }

    private void CopyMeanTo(Span<double> destination)
    {
        ThrowIfInterrupted();
        int c = Columns;
        if (destination.Length != c * c)
        {
            throw new ArgumentException($"Destination holds {destination.Length} values; the Hessian has {c * c}.", nameof(destination));
        }

        for (int i = 0; i < c; i++)
        {
            for (int j = i; j < c; j++)
            {
                double value = _meanDouble is not null ? _meanDouble[i * c + j] : _meanSingle![i * c + j];
                destination[i * c + j] = value;
                destination[j * c + i] = value;
            }
        }
    }

    /// <summary>M[i, j] ← M[i, j]·keep + (BᵀB)[i, j]·add on the upper triangle, in the accumulator's type.</summary>
    private void Accumulate<T>(ReadOnlySpan<float> activations, int rows, T[] mean, T keep, T add, CancellationToken cancellationToken)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int c = Columns;
        // Transposed so that every entry of BᵀB is a dot product of two contiguous columns of the batch.
        T[] transposed = ArrayPool<T>.Shared.Rent(rows * c);
        try
        {
            for (int r = 0; r < rows; r++)
            {
                ReadOnlySpan<float> row = activations.Slice(r * c, c);
                for (int j = 0; j < c; j++)
                {
                    transposed[j * rows + r] = T.CreateTruncating(row[j]);
                }
            }

            // The token is checked before each row of H (c·rows multiply-adds at most); Parallel.For throws the
            // OperationCanceledException itself, carrying the token.
            Parallel.For(0, c, ParallelOptions(cancellationToken), i =>
            {
                ReadOnlySpan<T> xi = transposed.AsSpan(i * rows, rows);
                Span<T> meanRow = mean.AsSpan(i * c, c);
                for (int j = i; j < c; j++)
                {
                    meanRow[j] = meanRow[j] * keep + TensorPrimitives.Dot(xi, transposed.AsSpan(j * rows, rows)) * add;
                }
            });
        }
        finally
        {
            ArrayPool<T>.Shared.Return(transposed);
        }
    }

    private ParallelOptions ParallelOptions(CancellationToken cancellationToken) =>
        new() { MaxDegreeOfParallelism = Options.MaxDegreeOfParallelism, CancellationToken = cancellationToken };

    private void ThrowIfInterrupted()
    {
        if (_interrupted)
        {
            throw new InvalidOperationException(
                "A cancelled Add left this accumulator's sums partly updated; call Reset() before using it again.");
        }
    }

    private static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                return i;
            }
        }

        return 0;
    }
}
