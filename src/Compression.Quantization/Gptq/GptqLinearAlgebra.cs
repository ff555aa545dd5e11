// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using Compression.Numerics;

namespace Compression.Quantization;

/// <summary>
/// GPTQ's two dense linear-algebra steps on top of <c>Compression.Numerics</c>: the damped upper Cholesky factor of
/// the inverse Hessian, and the objective's sum of quadratic forms.
/// </summary>
/// <remarks>All matrices are dense and row-major with an explicit row stride.</remarks>
internal static class GptqLinearAlgebra
{
    /// <summary>
    /// The upper triangular U with UᵀU = (H + λI)⁻¹ and a positive diagonal, in float64; false when H + λI is not
    /// numerically positive definite (a pivot is not positive or a value is not finite).
    /// </summary>
    /// <remarks>
    /// <see cref="Cholesky.TryUpperFactorOfInverse(ReadOnlySpan{double}, int, Span{double}, System.Threading.CancellationToken)"/> computes it without forming the inverse (one factorization of
    /// the reversed matrix and one triangular inverse): the factor the reference obtains by Cholesky, inverse and a
    /// second Cholesky.
    /// </remarks>
    public static bool TryUpperFactorOfInverse(ReadOnlySpan<double> h, int n, double lambda, out double[] upper,
        System.Threading.CancellationToken cancellationToken = default)
    {
        var damped = h.ToArray();
        for (int i = 0; i < n; i++)
        {
            damped[i * n + i] += lambda;
        }

        upper = new double[(long)n * n];
        if (!Cholesky.TryUpperFactorOfInverse(damped, n, upper, cancellationToken))
        {
            upper = [];
            return false;
        }

        // A NaN or ±∞ anywhere makes the sum non-finite; only then (or on overflow of the sum) is every value checked.
        if (!double.IsFinite(TensorPrimitives.Sum<double>(upper)))
        {
            foreach (double value in upper)
            {
                if (!double.IsFinite(value))
                {
                    upper = [];
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>
    /// Σ over the rows d of <paramref name="d"/> (m × n) of dᵀ·H·d for a symmetric n × n <paramref name="h"/>, in float64
    /// (the quadratic forms GPTQ minimizes are small differences of large terms). Row tiles run in parallel.
    /// </summary>
    public static double SumOfQuadraticForms(double[] d, int m, int n, double[] h, System.Threading.CancellationToken cancellationToken = default)
    {
        // P = D_t·H per tile of rows through the blocked GEMM (parallel inside), then Σ_r P_r·D_r in float64.
        const int TileRows = 256;
        var product = new double[Math.Min(TileRows, m) * n];
        double total = 0;
        for (int first = 0; first < m; first += TileRows)
        {
            // One check per tile of rows (a 256 × n × n product): the objective of a big layer is itself seconds of work.
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(TileRows, m - first);
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, count, n, n, 1.0, d.AsSpan(first * n, count * n), n, h, n, 0.0, product, n);
            for (int r = 0; r < count; r++)
            {
                total += TensorPrimitives.Dot<double>(product.AsSpan(r * n, n), d.AsSpan((first + r) * n, n));
            }
        }

        return total;
    }
}
