// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading.Tasks;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// Trit-plane decomposition (PTQTP-style): each row w ≈ Σₖ αₖ·tₖ with ternary planes tₖ ∈ {−1, 0, +1}ⁿ and one float
/// scale αₖ per plane and row, fitted by alternating exact minimisations of ‖w − Σ αₖ tₖ‖²: with the planes fixed, the
/// scales are the least-squares solution (a P×P normal system per row); with the scales fixed, each weight takes the
/// best of the 3^P trit combinations. Each step cannot increase the error, so the objective is monotone.
/// </summary>
/// <remarks>Initialisation is greedy: plane k is the TWN ternarisation (threshold 0.7·mean|r|) of the residual left
/// by planes 1..k−1. Storage: P·1.6 bits per weight (five trits per byte) plus P float32 scales per row.</remarks>
public sealed class TritPlaneQuantizer : ICompressor
{
    /// <summary>Creates the quantizer.</summary>
    public TritPlaneQuantizer(TritPlaneOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
    }

    /// <summary>The options.</summary>
    public TritPlaneOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "trit-planes";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.None;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        int rows = weight.Rows, columns = weight.Columns, planes = Options.Planes;
        var trits = new sbyte[planes][];
        for (int k = 0; k < planes; k++)
        {
            trits[k] = new sbyte[rows * columns];
        }

        var scales = new float[rows * planes];
        Memory<float> data = weight.Memory;
        Parallel.For(0, rows, new System.Threading.Tasks.ParallelOptions { CancellationToken = context.CancellationToken },
            r => FitRow(data.Span.Slice(r * columns, columns), r, trits, scales.AsSpan(r * planes, planes)));
        return new TritPlaneTensor(rows, columns, trits, scales);
    }

    /// <summary>The squared error ‖w − Σ αₖ tₖ‖² of one row, in float64.</summary>
    internal static double RowError(ReadOnlySpan<float> w, sbyte[][] trits, int offset, ReadOnlySpan<float> alpha)
    {
        double error = 0;
        for (int j = 0; j < w.Length; j++)
        {
            double approximation = 0;
            for (int k = 0; k < alpha.Length; k++)
            {
                approximation += alpha[k] * trits[k][offset + j];
            }

            double d = w[j] - approximation;
            error += d * d;
        }

        return error;
    }

    private void FitRow(ReadOnlySpan<float> w, int row, sbyte[][] trits, Span<float> alpha)
    {
        int n = w.Length, planes = alpha.Length, offset = row * n;
        var residual = new double[n];
        for (int j = 0; j < n; j++)
        {
            residual[j] = w[j];
        }

        // Greedy start: TWN on what the previous planes left.
        for (int k = 0; k < planes; k++)
        {
            double meanAbs = 0;
            foreach (double r in residual)
            {
                meanAbs += Math.Abs(r);
            }

            double threshold = n == 0 ? 0 : 0.7 * meanAbs / n, kept = 0;
            int count = 0;
            for (int j = 0; j < n; j++)
            {
                sbyte t = Math.Abs(residual[j]) > threshold ? (sbyte)Math.Sign(residual[j]) : (sbyte)0;
                trits[k][offset + j] = t;
                if (t != 0)
                {
                    kept += Math.Abs(residual[j]);
                    count++;
                }
            }

            alpha[k] = count == 0 ? 0f : (float)(kept / count);
            for (int j = 0; j < n; j++)
            {
                residual[j] -= alpha[k] * trits[k][offset + j];
            }
        }

        Span<int> combination = stackalloc int[planes];
        int combinations = 1;
        for (int k = 0; k < planes; k++)
        {
            combinations *= 3;
        }

        for (int iteration = 0; iteration < Options.MaxIterations; iteration++)
        {
            SolveScales(w, trits, offset, alpha);

            // Codes: every weight takes the best of the 3^P trit combinations for the current scales (ties keep
            // the current codes, so a round that changes nothing ends the fit).
            bool changed = false;
            for (int j = 0; j < n; j++)
            {
                double current = 0;
                for (int k = 0; k < planes; k++)
                {
                    current += alpha[k] * trits[k][offset + j];
                }

                double bestError = (w[j] - current) * (w[j] - current);
                int best = -1;
                for (int c = 0; c < combinations; c++)
                {
                    double value = 0;
                    for (int k = 0, rest = c; k < planes; k++, rest /= 3)
                    {
                        combination[k] = rest % 3 - 1;
                        value += alpha[k] * combination[k];
                    }

                    double e = (w[j] - value) * (w[j] - value);
                    if (e < bestError)
                    {
                        bestError = e;
                        best = c;
                    }
                }

                if (best >= 0)
                {
                    for (int k = 0, rest = best; k < planes; k++, rest /= 3)
                    {
                        trits[k][offset + j] = (sbyte)(rest % 3 - 1);
                    }

                    changed = true;
                }
            }

            if (!changed)
            {
                break;
            }
        }

        SolveScales(w, trits, offset, alpha);
    }

    /// <summary>Least-squares scales for fixed planes: G α = b with G = TᵀT, b = Tᵀw (float64, Gaussian elimination with
    /// partial pivoting; a singular system, e.g. a zero plane, keeps the previous scale of the dependent plane).</summary>
    private static void SolveScales(ReadOnlySpan<float> w, sbyte[][] trits, int offset, Span<float> alpha)
    {
        int planes = alpha.Length;
        var g = new double[planes, planes + 1];
        for (int j = 0; j < w.Length; j++)
        {
            for (int a = 0; a < planes; a++)
            {
                int ta = trits[a][offset + j];
                if (ta == 0)
                {
                    continue;
                }

                for (int b = 0; b < planes; b++)
                {
                    g[a, b] += ta * trits[b][offset + j];
                }

                g[a, planes] += ta * (double)w[j];
            }
        }

        var solution = new double[planes];
        for (int k = 0; k < planes; k++)
        {
            solution[k] = alpha[k];
        }

        var active = new bool[planes];
        for (int col = 0; col < planes; col++)
        {
            int pivot = -1;
            double best = 1e-12;
            for (int r = col; r < planes; r++)
            {
                if (Math.Abs(g[r, col]) > best)
                {
                    best = Math.Abs(g[r, col]);
                    pivot = r;
                }
            }

            if (pivot < 0)
            {
                continue;
            }

            for (int c = 0; c <= planes; c++)
            {
                (g[col, c], g[pivot, c]) = (g[pivot, c], g[col, c]);
            }

            for (int r = 0; r < planes; r++)
            {
                if (r != col && g[r, col] != 0)
                {
                    double factor = g[r, col] / g[col, col];
                    for (int c = col; c <= planes; c++)
                    {
                        g[r, c] -= factor * g[col, c];
                    }
                }
            }

            active[col] = true;
        }

        for (int k = 0; k < planes; k++)
        {
            if (active[k])
            {
                solution[k] = g[k, planes] / g[k, k];
            }
        }

        // Keep the new scales only if they do not make the row worse (a rank-deficient system can).
        var candidate = new float[planes];
        for (int k = 0; k < planes; k++)
        {
            candidate[k] = (float)solution[k];
        }

        if (RowError(w, trits, offset, candidate) <= RowError(w, trits, offset, alpha))
        {
            candidate.CopyTo(alpha);
        }
    }
}
