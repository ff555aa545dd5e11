// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;
using Compression.Gpu.Runtime;
using Compression.LowRank.Gpu;
using Compression.LowRank.Numerics;
using Compression.Numerics;
using Compression.Tensors;
using ILGPU.Runtime;
using MathNet.Numerics.LinearAlgebra;

namespace Compression.LowRank;

/// <summary>
/// A thin singular value decomposition <c>A ≈ U·diag(S)·Vᵀ</c> in float64: U is m×k, S descending and non-negative,
/// Vᵀ is k×n, with k ≤ min(m, n). Exact (every singular triplet) or randomized (the leading ones).
/// </summary>
/// <remarks>
/// <para>Signs are fixed so that the largest-magnitude entry of every right singular vector is positive; the same
/// input therefore gives the same factors, whichever route computed them.</para>
/// <para>Both routes reduce a tall matrix with a Householder QR first (as LAPACK's <c>gesdd</c> does), so MathNet's
/// dense SVD only ever sees a square matrix of order min(m, n) or the small sketch of the randomized route.</para>
/// </remarks>
public sealed class SingularValueDecomposition
{
    // A matrix this much taller than wide is reduced by QR before the dense SVD; nearer square the QR costs more
    // than it saves.
    private const double QrAspectRatio = 1.5;

    private SingularValueDecomposition(int rows, int columns, int rank, double[] u, double[] s, double[] vt)
    {
        Rows = rows;
        Columns = columns;
        Rank = rank;
        U = u;
        SingularValues = s;
        VT = vt;
    }

    /// <summary>m, the rows of the decomposed matrix.</summary>
    public int Rows { get; }

    /// <summary>n, its columns.</summary>
    public int Columns { get; }

    /// <summary>k, the number of singular triplets held.</summary>
    public int Rank { get; }

    /// <summary>Left singular vectors as the columns of an m×k row-major matrix.</summary>
    public double[] U { get; }

    /// <summary>Singular values, descending.</summary>
    public double[] SingularValues { get; }

    /// <summary>Right singular vectors as the rows of a k×n row-major matrix.</summary>
    public double[] VT { get; }

    /// <summary>Every singular triplet of <paramref name="matrix"/> (k = min(m, n)).</summary>
    /// <exception cref="ArgumentException">Not a finite non-empty matrix.</exception>
    public static SingularValueDecomposition Exact(DenseTensor matrix, CancellationToken cancellationToken = default)
    {
        double[] a = ToDouble(matrix, nameof(matrix));
        return Exact(a, matrix.Rows, matrix.Columns, cancellationToken);
    }

    /// <summary>Every singular triplet of the m×n row-major float64 matrix <paramref name="matrix"/>.</summary>
    /// <exception cref="ArgumentException">The span's length is not m·n, a dimension is zero, or a value is not finite.</exception>
    public static SingularValueDecomposition Exact(ReadOnlySpan<double> matrix, int rows, int columns, CancellationToken cancellationToken = default)
    {
        Validate(matrix, rows, columns, nameof(matrix));
        if (rows < columns)
        {
            return Exact(Transpose(matrix, rows, columns), columns, rows, cancellationToken).Transposed();
        }

        int m = rows, n = columns;
        if (m >= QrAspectRatio * n)
        {
            // A = Q·R, R = U_R·Σ·Vᵀ, so A = (Q·U_R)·Σ·Vᵀ.
            double[] panel = Transpose(matrix, m, n);
            double[] tau = HouseholderQr.Factor(panel, m, n, cancellationToken);
            double[] r = HouseholderQr.ExtractR(panel, m, n);
            double[] qt = new double[n * m];
            HouseholderQr.FormQ(panel, m, n, tau, qt, cancellationToken);
            (double[] ur, double[] s, double[] vt) = DenseSvd(r, n, n);
            // Uᵀ = U_Rᵀ·Qᵀ (n×m), then transposed to U.
            double[] ut = new double[n * m];
            Gemm.Multiply(MatrixTranspose.Transpose, MatrixTranspose.None, n, m, n, 1.0, ur, n, qt, m, 0.0, ut, m);
            return Normalised(m, n, n, Transpose(ut, n, m), s, vt);
        }

        (double[] u, double[] sv, double[] v) = DenseSvd(matrix.ToArray(), m, n);
        return Normalised(m, n, n, u, sv, v);
    }

    /// <summary>
    /// The leading <paramref name="rank"/> singular triplets of <paramref name="matrix"/> by randomized range finding
    /// (Halko–Martinsson–Tropp): <c>Y = A·Ω</c>, power iterations with Householder re-orthonormalisation, then the exact
    /// SVD of the small projection <c>Qᵀ·A</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Not a finite non-empty matrix, or the rank is outside [1, min(m, n)].</exception>
    public static SingularValueDecomposition Randomized(DenseTensor matrix, int rank, RandomizedSvdOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        double[] a = ToDouble(matrix, nameof(matrix));
        options ??= RandomizedSvdOptions.Default;
        if (GpuSelection.Select(options.Device, matrix.Length >= AutoGpuMinimumElements, "randomized SVD") is { } gpu)
        {
            RequireRank(rank, matrix.Rows, matrix.Columns);
            lock (gpu.SyncRoot)
            {
                using ScopedAcceleratorBinding binding = gpu.Accelerator.BindScoped();
                return new GpuRandomizedSvd(gpu, options).Decompose(matrix, rank, cancellationToken);
            }
        }

        return Randomized(a, matrix.Rows, matrix.Columns, rank, options, cancellationToken);
    }

    /// <summary>Below this many elements <see cref="ComputeDevice.Auto"/> keeps the randomized SVD on the CPU.</summary>
    public const long AutoGpuMinimumElements = 1L << 20;

    /// <summary>The leading singular triplets of the m×n row-major float64 <paramref name="matrix"/>; see the
    /// <see cref="DenseTensor"/> overload.</summary>
    /// <exception cref="ArgumentException">Bad shape, non-finite values, or the rank is outside [1, min(m, n)].</exception>
    public static SingularValueDecomposition Randomized(ReadOnlySpan<double> matrix, int rows, int columns, int rank,
        RandomizedSvdOptions? options = null, CancellationToken cancellationToken = default)
    {
        Validate(matrix, rows, columns, nameof(matrix));
        RequireRank(rank, rows, columns);
        options ??= RandomizedSvdOptions.Default;
        int m = rows, n = columns;
        int sketch = Math.Min(rank + options.Oversampling, Math.Min(m, n));

        // Panels are kept transposed (sketch × length, row-major), i.e. column by column, for the QR.
        var sampler = new GaussianSampler(options.Seed);
        double[] omegaT = new double[(long)sketch * n <= int.MaxValue ? sketch * n : throw TooLarge(m, n)];
        sampler.Fill(omegaT);
        double[] yt = new double[sketch * m];
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.Transpose, sketch, m, n, 1.0, omegaT, n, matrix, n, 0.0, yt, m);
        double[] qt = Orthonormalise(yt, m, sketch, cancellationToken);
        double[] zt = new double[sketch * n];
        for (int i = 0; i < options.PowerIterations; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, sketch, n, m, 1.0, qt, m, matrix, n, 0.0, zt, n);
            double[] pt = Orthonormalise(zt, n, sketch, cancellationToken);
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.Transpose, sketch, m, n, 1.0, pt, n, matrix, n, 0.0, yt, m);
            qt = Orthonormalise(yt, m, sketch, cancellationToken);
        }

        // B = Qᵀ·A (sketch × n), stored row-major: that is Bᵀ column by column, ready for its QR Bᵀ = Q₂·R₂.
        double[] b = new double[sketch * n];
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, sketch, n, m, 1.0, qt, m, matrix, n, 0.0, b, n);
        double[] tau = HouseholderQr.Factor(b, n, sketch, cancellationToken);
        double[] r2 = HouseholderQr.ExtractR(b, n, sketch);
        double[] q2t = new double[sketch * n];
        HouseholderQr.FormQ(b, n, sketch, tau, q2t, cancellationToken);

        // R₂ = U_R·Σ·V_Rᵀ gives B = V_R·Σ·(Q₂·U_R)ᵀ, so A ≈ Q·B = (Q·V_R)·Σ·(Q₂·U_R)ᵀ.
        (double[] ur, double[] s, double[] vrt) = DenseSvd(r2, sketch, sketch);
        double[] ut = new double[sketch * m];
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, sketch, m, sketch, 1.0, vrt, sketch, qt, m, 0.0, ut, m);
        double[] vt = new double[sketch * n];
        Gemm.Multiply(MatrixTranspose.Transpose, MatrixTranspose.None, sketch, n, sketch, 1.0, ur, sketch, q2t, n, 0.0, vt, n);
        return Normalised(m, n, sketch, Transpose(ut, sketch, m), s, vt).Truncate(rank);
    }

    /// <summary>The leading <paramref name="rank"/> triplets.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The rank is outside [1, <see cref="Rank"/>].</exception>
    public SingularValueDecomposition Truncate(int rank)
    {
        if (rank < 1 || rank > Rank)
        {
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"The rank must be in [1, {Rank}].");
        }

        if (rank == Rank)
        {
            return this;
        }

        double[] u = new double[Rows * rank];
        for (int i = 0; i < Rows; i++)
        {
            Array.Copy(U, i * Rank, u, i * rank, rank);
        }

        return new SingularValueDecomposition(Rows, Columns, rank, u, SingularValues[..rank], VT[..(rank * Columns)]);
    }

    /// <summary>U·diag(S)·Vᵀ as an m×n row-major float64 matrix.</summary>
    public double[] Reconstruct()
    {
        double[] us = new double[Rows * Rank];
        for (int i = 0; i < Rows; i++)
        {
            for (int j = 0; j < Rank; j++)
            {
                us[i * Rank + j] = U[i * Rank + j] * SingularValues[j];
            }
        }

        double[] a = new double[Rows * Columns];
        Gemm.Multiply(us, VT, a, Rows, Columns, Rank);
        return a;
    }

    private SingularValueDecomposition Transposed() =>
        new(Columns, Rows, Rank, Transpose(VT, Rank, Columns), SingularValues, Transpose(U, Rows, Rank));

    internal static void RequireRank(int rank, int rows, int columns)
    {
        if (rank < 1 || rank > Math.Min(rows, columns))
        {
            throw new ArgumentOutOfRangeException(nameof(rank), rank,
                $"The rank must be in [1, min(rows, columns)] = [1, {Math.Min(rows, columns)}] for a {rows}×{columns} matrix.");
        }
    }

    // Orthonormal basis of the panel's columns (panel transposed: k × length), as a new transposed panel.
    internal static double[] Orthonormalise(double[] panel, int length, int k, CancellationToken cancellationToken)
    {
        double[] tau = HouseholderQr.Factor(panel, length, k, cancellationToken);
        double[] q = new double[k * length];
        HouseholderQr.FormQ(panel, length, k, tau, q, cancellationToken);
        return q;
    }

    internal static (double[] U, double[] S, double[] VT) DenseSvd(double[] a, int m, int n)
    {
        // MathNet is column-major; a row-major m×n is the column-major n×m transpose, so decompose Aᵀ = V·Σ·Uᵀ.
        Matrix<double> at = Matrix<double>.Build.DenseOfColumnMajor(n, m, a);
        MathNet.Numerics.LinearAlgebra.Factorization.Svd<double> svd = at.Svd(computeVectors: true);
        int k = Math.Min(m, n);
        double[] s = new double[k];
        double[] u = new double[m * k];
        double[] vt = new double[k * n];
        Matrix<double> v = svd.U;   // n×n: columns are A's right singular vectors
        Matrix<double> ut = svd.VT; // m×m: rows are A's left singular vectors
        for (int j = 0; j < k; j++)
        {
            s[j] = svd.S[j];
            for (int i = 0; i < m; i++)
            {
                u[i * k + j] = ut[j, i];
            }

            for (int c = 0; c < n; c++)
            {
                vt[j * n + c] = v[c, j];
            }
        }

        return (u, s, vt);
    }

    internal static SingularValueDecomposition Normalised(int m, int n, int k, double[] u, double[] s, double[] vt)
    {
        for (int j = 0; j < k; j++)
        {
            Span<double> row = vt.AsSpan(j * n, n);
            int largest = 0;
            for (int c = 1; c < n; c++)
            {
                if (Math.Abs(row[c]) > Math.Abs(row[largest]))
                {
                    largest = c;
                }
            }

            if (row[largest] < 0)
            {
                foreach (ref double value in row)
                {
                    value = -value;
                }

                for (int i = 0; i < m; i++)
                {
                    u[i * k + j] = -u[i * k + j];
                }
            }
        }

        return new SingularValueDecomposition(m, n, k, u, s, vt);
    }

    private static double[] ToDouble(DenseTensor matrix, string name)
    {
        ArgumentNullException.ThrowIfNull(matrix, name);
        if (matrix.Rank != 2)
        {
            throw new ArgumentException($"A matrix is needed; got shape [{string.Join(", ", matrix.Shape.ToArray())}].", name);
        }

        double[] a = new double[matrix.Length];
        ReadOnlySpan<float> source = matrix.Span;
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = source[i];
        }

        return a;
    }

    private static void Validate(ReadOnlySpan<double> matrix, int rows, int columns, string name)
    {
        if (rows <= 0 || columns <= 0)
        {
            throw new ArgumentException($"The matrix is {rows}×{columns}; both dimensions must be positive.", name);
        }

        if (matrix.Length != (long)rows * columns)
        {
            throw new ArgumentException($"The matrix has {matrix.Length} values; {rows}×{columns} = {(long)rows * columns} are needed.", name);
        }

        for (int i = 0; i < matrix.Length; i++)
        {
            if (!double.IsFinite(matrix[i]))
            {
                throw new ArgumentException($"The matrix holds {matrix[i]} at ({i / columns}, {i % columns}); values must be finite.", name);
            }
        }
    }

    internal static double[] Transpose(ReadOnlySpan<double> a, int rows, int columns)
    {
        double[] t = new double[a.Length];
        const int Block = 32;
        for (int i0 = 0; i0 < rows; i0 += Block)
        {
            for (int j0 = 0; j0 < columns; j0 += Block)
            {
                int i1 = Math.Min(i0 + Block, rows), j1 = Math.Min(j0 + Block, columns);
                for (int i = i0; i < i1; i++)
                {
                    for (int j = j0; j < j1; j++)
                    {
                        t[j * rows + i] = a[i * columns + j];
                    }
                }
            }
        }

        return t;
    }

    private static ArgumentException TooLarge(int m, int n) =>
        new($"A {m}×{n} matrix is too large for one array of the sketch.", "matrix");
}
