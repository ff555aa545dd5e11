// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading;
using Compression.Gpu.Numerics;
using Compression.Gpu.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.LowRank.Gpu;

/// <summary>
/// Orthonormalises the rows of a thin float32 panel on the device (k × L, row-major: the columns of a tall L×k matrix)
/// by shifted CholeskyQR3 (Fukaya, Kannan, Nakatsukasa, Yamamoto and Yanagisawa, "Shifted Cholesky QR for computing
/// the QR factorization of ill-conditioned matrices", SIAM J. Sci. Comput. 2020), so the randomized SVD's range
/// finder never sends a panel to the host.
/// </summary>
/// <remarks>
/// <para>One pass: G = P·Pᵀ in float64 (<see cref="GramKernels"/>), U with UᵀU = (G + s·I)⁻¹ by the device's float64
/// Cholesky (<see cref="GpuCholesky"/>), then P ← U·P, whose rows are orthonormal when s = 0 since U·G·Uᵀ = I. The
/// first pass adds the shift s = 11·(L·k + k(k+1))·2⁻⁵³·tr(G), which keeps G + s·I positive definite for any panel
/// of full rank in float32 and leaves a panel of modest condition; two unshifted passes then restore orthonormality
/// to float32 rounding. A panel that is rank-deficient (a matrix of rank below the sketch, or zero) makes a later pass
/// fail; that panel alone goes to the host's Householder QR, which completes the basis.</para>
/// <para>The result spans the same subspace as the host's Householder Q (their columns differ in sign, which the
/// SVD's sign normalisation removes).</para>
/// </remarks>
internal sealed class GpuOrthonormalizer : IDisposable
{
    private static readonly object s_gram = new();
    private readonly GpuContext _gpu;
    private readonly int _k;
    private readonly MemoryBuffer1D<double, Stride1D.Dense> _gram;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _upper;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _scratch;
    private readonly double[] _diagonal;

    public GpuOrthonormalizer(GpuContext gpu, int k, int longest)
    {
        _gpu = gpu;
        _k = k;
        _gram = gpu.Accelerator.Allocate1D<double>((long)k * k);
        _upper = gpu.Accelerator.Allocate1D<float>((long)k * k);
        _scratch = gpu.Accelerator.Allocate1D<float>((long)k * longest);
        _diagonal = new double[(long)k * k];
    }

    /// <summary>Panels that fell back to the host (rank-deficient ones), for tests and the benchmark.</summary>
    public int HostFallbacks { get; private set; }

    /// <summary>Orthonormalises the k rows of <paramref name="panel"/> (k × <paramref name="length"/>) in place.</summary>
    public void Orthonormalise(ArrayView<float> panel, int length, CancellationToken cancellationToken)
    {
        ArrayView<float> scratch = _scratch.View.SubView(0, (long)_k * length);
        for (int pass = 0; pass < 3; pass++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Gram(panel, panel, length, symmetric: true);
            double shift = 0;
            if (pass == 0)
            {
                _gram.View.CopyToCPU(_diagonal);
                double trace = 0;
                for (int i = 0; i < _k; i++)
                {
                    trace += _diagonal[(long)i * _k + i];
                }

                shift = 11.0 * ((double)length * _k + (double)_k * (_k + 1)) * Math.ScaleB(1.0, -53) * trace;
            }

            if (!GpuCholesky.TryUpperFactorOfInverse(_gpu, _gram.View, _k, shift, _upper.View))
            {
                OnHost(panel, length, cancellationToken);
                return;
            }

            GpuPanelProducts.Multiply(_gpu, _upper.View, panel, scratch, _k, _k, length, transpose: false);
            panel.SubView(0, (long)_k * length).CopyFrom(scratch);
        }
    }

    /// <summary><c>C = X·Yᵀ</c> (k × k, float64) of two k × <paramref name="length"/> panels, into the Gram buffer.</summary>
    public ArrayView<double> Gram(ArrayView<float> x, ArrayView<float> y, int length, bool symmetric)
    {
        var kernel = _gpu.GetOrLoadKernel(s_gram, accelerator =>
            accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<double>, int, int, int>(GramKernels.CrossGram));
        int tiles = (_k + GramKernels.Tile - 1) / GramKernels.Tile;
        kernel(new KernelConfig(new Index2D(tiles, tiles), new Index2D(GramKernels.Tile, GramKernels.Tile)), x, y, _gram.View, _k, length, symmetric ? 1 : 0);
        return _gram.View;
    }

    private void OnHost(ArrayView<float> panel, int length, CancellationToken cancellationToken)
    {
        HostFallbacks++;
        var values = new float[(long)_k * length];
        panel.SubView(0, values.Length).CopyToCPU(values);
        double[] wide = Array.ConvertAll(values, v => (double)v);
        double[] q = SingularValueDecomposition.Orthonormalise(wide, length, _k, cancellationToken);
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)q[i];
        }

        panel.SubView(0, values.Length).CopyFromCPU(values);
    }

    public void Dispose()
    {
        _gram.Dispose();
        _upper.Dispose();
        _scratch.Dispose();
    }
}
