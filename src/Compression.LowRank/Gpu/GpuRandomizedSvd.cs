// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;
using Compression.Gpu.Runtime;
using Compression.LowRank.Numerics;
using Compression.Numerics;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.LowRank.Gpu;

/// <summary>
/// The randomized SVD of <see cref="SingularValueDecomposition.Randomized(DenseTensor, int, RandomizedSvdOptions?, CancellationToken)"/>
/// (Halko, Martinsson and Tropp, "Finding structure with randomness", SIAM Review 2011) with its O(m·n·k) work on an
/// ILGPU accelerator: the matrix stays on the device in float32, and every product with it (<c>A·Ω</c>,
/// <c>Aᵀ·Q</c>, <c>Qᵀ·A</c>) is a tiled float32 kernel; the thin QRs of the m×k and n×k panels, the SVD of the small
/// k×k factor and the final rotations stay on the host in float64, exactly as on the CPU route.
/// </summary>
/// <remarks>
/// <para>The same seed draws the same Gaussian test matrix Ω as the CPU route (rounded to float32 for the upload), so
/// the two agree to float32 rounding: singular values within about 1e-6 of σ₁ on well-separated spectra. Per
/// product only the panel (k·max(m, n) values) crosses the bus each way.</para>
/// <para>Uses the context's default stream; do not share one context between threads that call this at once.</para>
/// </remarks>
/// <example>
/// <code>
/// using GpuContext gpu = GpuContext.CreateBest();
/// SingularValueDecomposition svd = new GpuRandomizedSvd(gpu).Decompose(weight, rank: 256);
/// </code>
/// </example>
public sealed class GpuRandomizedSvd
{
    private readonly GpuContext _gpu;

    /// <summary>Creates the solver on <paramref name="gpu"/> (which it does not own) with the given settings.</summary>
    /// <param name="gpu">The accelerator.</param>
    /// <param name="options">Oversampling, power iterations and seed; <see cref="RandomizedSvdOptions.Default"/> when null.</param>
    public GpuRandomizedSvd(GpuContext gpu, RandomizedSvdOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        _gpu = gpu;
        Options = options ?? RandomizedSvdOptions.Default;
    }

    /// <summary>The settings.</summary>
    public RandomizedSvdOptions Options { get; }

    /// <summary>The leading <paramref name="rank"/> singular triplets of <paramref name="matrix"/>, uploaded for the
    /// call.</summary>
    /// <exception cref="ArgumentException">Not a finite non-empty matrix.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The rank is outside [1, min(m, n)].</exception>
    public SingularValueDecomposition Decompose(DenseTensor matrix, int rank, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.Rank != 2)
        {
            throw new ArgumentException($"A matrix is needed; got shape [{string.Join(", ", matrix.Shape.ToArray())}].", nameof(matrix));
        }

        int rows = matrix.Rows, columns = matrix.Columns;
        ReadOnlySpan<float> values = matrix.Span;
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                throw new ArgumentException($"The matrix holds {values[i]} at ({i / columns}, {i % columns}); values must be finite.", nameof(matrix));
            }
        }

        SingularValueDecomposition.RequireRank(rank, rows, columns);
        using MemoryBuffer1D<float, Stride1D.Dense> device = _gpu.Accelerator.Allocate1D<float>(values.Length);
        device.View.BaseView.CopyFromCPU(values);
        return Decompose(device.View.BaseView, rows, columns, rank, cancellationToken);
    }

    /// <summary>
    /// The leading <paramref name="rank"/> singular triplets of the rows × columns row-major float32 matrix already on
    /// the device (the view's first rows·columns values; it is only read).
    /// </summary>
    /// <exception cref="ArgumentException">A dimension is not positive, the view is too short, or the products are not
    /// finite (the matrix holds NaN or infinity, or values so large that float32 products overflow).</exception>
    /// <exception cref="ArgumentOutOfRangeException">The rank is outside [1, min(m, n)].</exception>
    public SingularValueDecomposition Decompose(ArrayView<float> matrix, int rows, int columns, int rank,
        CancellationToken cancellationToken = default)
    {
        if (rows <= 0 || columns <= 0)
        {
            throw new ArgumentException($"The matrix is {rows}×{columns}; both dimensions must be positive.", nameof(matrix));
        }

        if (matrix.Length < (long)rows * columns)
        {
            throw new ArgumentException($"The view holds {matrix.Length} values; {rows}×{columns} = {(long)rows * columns} are needed.", nameof(matrix));
        }

        SingularValueDecomposition.RequireRank(rank, rows, columns);
        int m = rows, n = columns;
        int sketch = Math.Min(rank + Options.Oversampling, Math.Min(m, n));
        long longest = (long)sketch * Math.Max(m, n);
        if (longest > int.MaxValue)
        {
            throw new ArgumentException($"A {m}×{n} matrix with a sketch of {sketch} is too large for one panel array.", nameof(matrix));
        }

        using var panels = new Panels(_gpu, matrix, m, n, (int)longest);

        // The CPU route's steps, with the products on the device; panels are transposed (sketch × length).
        var sampler = new GaussianSampler(Options.Seed);
        double[] omegaT = new double[sketch * n];
        sampler.Fill(omegaT);
        double[] yt = panels.Multiply(omegaT, sketch, transpose: true);
        double[] qt = SingularValueDecomposition.Orthonormalise(yt, m, sketch, cancellationToken);
        for (int i = 0; i < Options.PowerIterations; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            double[] zt = panels.Multiply(qt, sketch, transpose: false);
            double[] pt = SingularValueDecomposition.Orthonormalise(zt, n, sketch, cancellationToken);
            yt = panels.Multiply(pt, sketch, transpose: true);
            qt = SingularValueDecomposition.Orthonormalise(yt, m, sketch, cancellationToken);
        }

        // B = Qᵀ·A (sketch × n) is Bᵀ column by column: Bᵀ = Q₂·R₂, R₂ = U_R·Σ·V_Rᵀ, A ≈ (Q·V_R)·Σ·(Q₂·U_R)ᵀ.
        double[] b = panels.Multiply(qt, sketch, transpose: false);
        double[] tau = HouseholderQr.Factor(b, n, sketch, cancellationToken);
        double[] r2 = HouseholderQr.ExtractR(b, n, sketch);
        double[] q2t = new double[sketch * n];
        HouseholderQr.FormQ(b, n, sketch, tau, q2t, cancellationToken);
        (double[] ur, double[] s, double[] vrt) = SingularValueDecomposition.DenseSvd(r2, sketch, sketch);
        double[] ut = new double[sketch * m];
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, sketch, m, sketch, 1.0, vrt, sketch, qt, m, 0.0, ut, m);
        double[] vt = new double[sketch * n];
        Gemm.Multiply(MatrixTranspose.Transpose, MatrixTranspose.None, sketch, n, sketch, 1.0, ur, sketch, q2t, n, 0.0, vt, n);
        return SingularValueDecomposition.Normalised(m, n, sketch, SingularValueDecomposition.Transpose(ut, sketch, m), s, vt)
            .Truncate(rank);
    }

    /// <summary>The device buffers of one decomposition: the float32 panel going in and the product coming out.</summary>
    private sealed class Panels : IDisposable
    {
        private readonly GpuContext _gpu;
        private readonly ArrayView<float> _matrix;
        private readonly int _rows, _columns;
        private readonly MemoryBuffer1D<float, Stride1D.Dense> _panel, _product;
        private readonly float[] _staging;

        public Panels(GpuContext gpu, ArrayView<float> matrix, int rows, int columns, int capacity)
        {
            _gpu = gpu;
            _matrix = matrix;
            _rows = rows;
            _columns = columns;
            _panel = gpu.Accelerator.Allocate1D<float>(capacity);
            _product = gpu.Accelerator.Allocate1D<float>(capacity);
            _staging = new float[capacity];
        }

        /// <summary>P·A (P sketch × rows) or P·Aᵀ (P sketch × columns) for the float64 panel P, widened back.</summary>
        public double[] Multiply(double[] panel, int sketch, bool transpose)
        {
            int length = panel.Length, outLength = sketch * (transpose ? _rows : _columns);
            for (int i = 0; i < length; i++)
            {
                _staging[i] = (float)panel[i];
            }

            ArrayView<float> input = _panel.View.BaseView.SubView(0, length), output = _product.View.BaseView.SubView(0, outLength);
            input.CopyFromCPU(_staging.AsSpan(0, length));
            GpuPanelProducts.Multiply(_gpu, input, _matrix, output, sketch, _rows, _columns, transpose);
            output.CopyToCPU(_staging.AsSpan(0, outLength));
            double[] result = new double[outLength];
            for (int i = 0; i < outLength; i++)
            {
                float value = _staging[i];
                if (!float.IsFinite(value))
                {
                    throw new ArgumentException(
                        $"A product with the matrix holds {value}: the matrix holds NaN or infinity, or values so large that float32 products overflow.",
                        "matrix");
                }

                result[i] = value;
            }

            return result;
        }

        public void Dispose()
        {
            _panel.Dispose();
            _product.Dispose();
        }
    }
}
