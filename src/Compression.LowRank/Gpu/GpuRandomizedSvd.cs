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

        Accelerator accelerator = _gpu.Accelerator;
        using MemoryBuffer1D<float, Stride1D.Dense> sketchPanel = accelerator.Allocate1D<float>((long)sketch * m);
        using MemoryBuffer1D<float, Stride1D.Dense> otherPanel = accelerator.Allocate1D<float>((long)sketch * n);
        using MemoryBuffer1D<float, Stride1D.Dense> spare = accelerator.Allocate1D<float>(longest);
        using var orthonormalizer = new GpuOrthonormalizer(_gpu, sketch, (int)longest);
        ArrayView<float> y = sketchPanel.View, z = otherPanel.View, w = spare.View;

        // The CPU route's steps with every panel on the device (panels are transposed: sketch × length). Ω is drawn on
        // the host from the same seed, so both routes sketch with the same directions.
        var sampler = new GaussianSampler(Options.Seed);
        double[] omegaT = new double[sketch * n];
        sampler.Fill(omegaT);
        w.SubView(0, omegaT.Length).CopyFromCPU(Array.ConvertAll(omegaT, v => (float)v));
        GpuPanelProducts.Multiply(_gpu, w, matrix, y, sketch, m, n, transpose: true);
        RequireFinite(y, sketch * m);
        orthonormalizer.Orthonormalise(y, m, cancellationToken);
        for (int i = 0; i < Options.PowerIterations; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            GpuPanelProducts.Multiply(_gpu, y, matrix, z, sketch, m, n, transpose: false);
            orthonormalizer.Orthonormalise(z, n, cancellationToken);
            GpuPanelProducts.Multiply(_gpu, z, matrix, y, sketch, m, n, transpose: true);
            orthonormalizer.Orthonormalise(y, m, cancellationToken);
        }

        // B = Qᵀ·A (sketch × n) is Bᵀ column by column. Bᵀ = Q₂·R₂ with Q₂ from the same orthonormalisation and
        // R₂ = Q₂ᵀ·Bᵀ (a float64 cross Gram of the two panels); R₂ = U_R·Σ·V_Rᵀ, A ≈ (Q·V_R)·Σ·(Q₂·U_R)ᵀ.
        GpuPanelProducts.Multiply(_gpu, y, matrix, z, sketch, m, n, transpose: false);
        RequireFinite(z, sketch * n);
        w.SubView(0, (long)sketch * n).CopyFrom(z.SubView(0, (long)sketch * n));
        orthonormalizer.Orthonormalise(w, n, cancellationToken);
        double[] r2 = new double[sketch * sketch];
        orthonormalizer.Gram(w, z, n, symmetric: false).SubView(0, r2.Length).CopyToCPU(r2);
        (double[] ur, double[] s, double[] vrt) = GpuJacobiSvd.TryDecompose(_gpu, r2, sketch, out var small, cancellationToken)
            ? small
            : SingularValueDecomposition.DenseSvd(r2, sketch, sketch);

        // Uᵀ = V_Rᵀ·Qᵀ and Vᵀ = U_Rᵀ·Q₂ᵀ, as panel products with the small factors on the device (float32).
        using MemoryBuffer1D<float, Stride1D.Dense> factor = accelerator.Allocate1D<float>((long)sketch * sketch);
        using MemoryBuffer1D<float, Stride1D.Dense> utDevice = accelerator.Allocate1D<float>((long)sketch * m);
        factor.View.CopyFromCPU(Array.ConvertAll(vrt, v => (float)v));
        GpuPanelProducts.Multiply(_gpu, factor.View, y, utDevice.View, sketch, sketch, m, transpose: false);
        factor.View.CopyFromCPU(Array.ConvertAll(SingularValueDecomposition.Transpose(ur, sketch, sketch), v => (float)v));
        GpuPanelProducts.Multiply(_gpu, factor.View, w, z, sketch, sketch, n, transpose: false);
        double[] ut = Download(utDevice.View, sketch * m);
        double[] vt = Download(z, sketch * n);
        HostFallbacks = orthonormalizer.HostFallbacks;
        return SingularValueDecomposition.Normalised(m, n, sketch, SingularValueDecomposition.Transpose(ut, sketch, m), s, vt)
            .Truncate(rank);
    }

    /// <summary>Panels the last decomposition orthonormalised on the host (rank-deficient ones; 0 normally).</summary>
    internal int HostFallbacks { get; private set; }

    private static double[] Download(ArrayView<float> view, int length)
    {
        var values = new float[length];
        view.SubView(0, length).CopyToCPU(values);
        return Array.ConvertAll(values, v => (double)v);
    }

    /// <summary>Throws when a product with the matrix is not finite (the first and last products are checked: a
    /// non-finite value anywhere in A reaches both).</summary>
    private static void RequireFinite(ArrayView<float> view, int length)
    {
        var values = new float[length];
        view.SubView(0, length).CopyToCPU(values);
        foreach (float value in values)
        {
            if (!float.IsFinite(value))
            {
                throw new ArgumentException(
                    $"A product with the matrix holds {value}: the matrix holds NaN or infinity, or values so large that float32 products overflow.",
                    "matrix");
            }
        }
    }
}
