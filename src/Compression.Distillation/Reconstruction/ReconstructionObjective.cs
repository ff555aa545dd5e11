// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using Compression.Calibration;
using Compression.Numerics;
using Compression.Tensors;

namespace Compression.Distillation;

/// <summary>
/// The relative output error <c>E(θ) = tr(D·H·Dᵀ) / tr(W·H·Wᵀ)</c>, <c>D = W − Ŵ(θ)</c>, and its gradient
/// <c>∂E/∂Ŵ = −2·D·H / tr(W·H·Wᵀ)</c> pulled back to θ through the representation's vector–Jacobian product.
/// </summary>
/// <remarks>
/// <para>D and the product D·H are formed in float64, a block of rows at a time (scratch stays near 2·2²⁰ doubles
/// whatever the layer's size). Float64 because the line search compares objectives that differ by a few ulps of E near
/// the optimum: a float32 D·H would carry a relative error of about n·2⁻²⁴ (1e-4 for n = 4096), far above the
/// decreases it must resolve, and the monotone-decrease guarantee would rest on noise. The cost is one float64 GEMM of
/// m·n² multiply-adds per evaluation, which Core's <see cref="Gemm"/> spreads over the cores.</para>
/// <para>The gradient reaches the representation in float32 (the contract's type); it only steers the search, every
/// accept/reject decision uses the float64 objective.</para>
/// </remarks>
internal sealed class ReconstructionObjective
{
    private const int BlockElementBudget = 1 << 20;

    private readonly ITunableTensor _tunable;
    private readonly float[] _weight;
    private readonly double[] _hessian;
    private readonly int _rows;
    private readonly int _columns;
    private readonly int _blockRows;
    private readonly double[] _difference;
    private readonly double[] _product;
    private readonly float[] _approximation;
    private readonly float[] _weightGradient;
    private readonly float[] _parameterGradient;

    public ReconstructionObjective(DenseTensor weight, HessianAccumulator hessian, double dampening, ITunableTensor tunable)
    {
        _tunable = tunable;
        _rows = weight.Rows;
        _columns = weight.Columns;
        _weight = weight.Span.ToArray();
        _hessian = hessian.GetHessian();
        int n = _columns;
        double meanDiagonal = 0;
        for (int j = 0; j < n; j++)
        {
            meanDiagonal += _hessian[j * n + j];
        }

        meanDiagonal /= Math.Max(n, 1);
        Dampening = dampening * meanDiagonal;
        for (int j = 0; j < n; j++)
        {
            _hessian[j * n + j] += Dampening;
        }

        _blockRows = Math.Clamp(BlockElementBudget / Math.Max(n, 1), 1, Math.Max(_rows, 1));
        _difference = new double[_blockRows * n];
        _product = new double[_blockRows * n];
        _approximation = new float[_weight.Length];
        _weightGradient = new float[_weight.Length];
        _parameterGradient = new float[tunable.TunableParameterCount];

        // tr(W·H·Wᵀ) normalizes E; a zero weight or all-zero inputs leave it 0, and then E is the absolute error.
        double energy = Accumulate(_weight, Array.Empty<float>(), subtract: false, scale: 0);
        Denominator = energy > 0 && double.IsFinite(energy) ? energy : 1;
    }

    /// <summary>The absolute λ added to H's diagonal.</summary>
    public double Dampening { get; }

    /// <summary>tr(W·H·Wᵀ) with the dampened H, or 1 when that is 0.</summary>
    public double Denominator { get; }

    /// <summary>E of a dense approximation Ŵ, without gradient.</summary>
    public double Error(ReadOnlySpan<float> approximation) =>
        Accumulate(_weight, approximation, subtract: true, scale: 0) / Denominator;

    /// <summary>E(θ) and, into <paramref name="gradient"/>, ∂E/∂θ.</summary>
    public double Evaluate(ReadOnlySpan<float> parameters, Span<double> gradient)
    {
        _tunable.Reconstruct(parameters, _approximation);
        double error = Accumulate(_weight, _approximation, subtract: true, scale: -2 / Denominator) / Denominator;
        Array.Clear(_parameterGradient);
        _tunable.BackpropagateReconstruction(parameters, _weightGradient, _parameterGradient);
        for (int i = 0; i < gradient.Length; i++)
        {
            gradient[i] = _parameterGradient[i];
        }

        return error;
    }

    /// <summary>Σ over row blocks of ⟨D, D·H⟩ with D = W − Ŵ (or W alone); with a non-zero scale also writes
    /// scale·D·H into the float32 weight gradient.</summary>
    private double Accumulate(float[] weight, ReadOnlySpan<float> approximation, bool subtract, double scale)
    {
        int n = _columns;
        double total = 0;
        for (int start = 0; start < _rows; start += _blockRows)
        {
            int rows = Math.Min(_blockRows, _rows - start);
            int count = rows * n;
            Span<double> d = _difference.AsSpan(0, count);
            Span<double> product = _product.AsSpan(0, count);
            ReadOnlySpan<float> w = weight.AsSpan(start * n, count);
            if (subtract)
            {
                ReadOnlySpan<float> a = approximation.Slice(start * n, count);
                for (int i = 0; i < count; i++)
                {
                    d[i] = (double)w[i] - a[i];
                }
            }
            else
            {
                for (int i = 0; i < count; i++)
                {
                    d[i] = w[i];
                }
            }

            Gemm.Multiply(d, _hessian, product, rows, n, n);
            total += TensorPrimitives.Dot<double>(d, product);
            if (scale != 0)
            {
                Span<float> g = _weightGradient.AsSpan(start * n, count);
                for (int i = 0; i < count; i++)
                {
                    g[i] = (float)(scale * product[i]);
                }
            }
        }

        return total;
    }
}
