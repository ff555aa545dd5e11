// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using ILGPU;
using ILGPU.Algorithms;

namespace Compression.LowRank.Gpu;

/// <summary>
/// Device code of the one-sided (Hestenes) Jacobi SVD of a small square float64 matrix, stored column by column:
/// one step rotates the disjoint column pairs of one round of a round-robin tournament, a warp per pair.
/// </summary>
/// <remarks>
/// A rotation of columns p and q (and of the same columns of V) makes them orthogonal; a sweep of n − 1 rounds visits
/// every pair once, and sweeps repeat until no pair was rotated. The rotation is Rutishauser's (the smaller angle,
/// t = sign(ζ)/(|ζ| + √(1 + ζ²)) with ζ = (β − α)/(2γ)), which converges quadratically and keeps every column's
/// norm exact to rounding; it needs no pivoting and is as accurate as the Golub–Kahan SVD in float64, for a matrix of
/// a few hundred columns, in O(n²) rotations each of O(n) work.
/// </remarks>
internal static class JacobiKernels
{
    /// <summary>
    /// One round: group g (one warp) takes pair g of <paramref name="pairs"/>' round <paramref name="round"/>
    /// (entries ≥ n are the padding player of an odd n, and skip). Sets <paramref name="rotated"/>[0] when a pair
    /// was further from orthogonal than <paramref name="tolerance"/> (relative: |γ| &gt; tol·√(αβ)).
    /// </summary>
    public static void Round(ArrayView<double> a, ArrayView<double> v, ArrayView<int> pairs, ArrayView<int> rotated,
        int n, int players, int round, double tolerance)
    {
        int pair = Grid.IdxX;
        int lane = Group.IdxX;
        long entry = ((long)round * (players / 2) + pair) * 2;
        int p = pairs[entry], q = pairs[entry + 1];
        if (p >= n || q >= n)
        {
            return;
        }

        long columnP = (long)p * n, columnQ = (long)q * n;
        double alpha = 0, beta = 0, gamma = 0;
        for (int r = lane; r < n; r += 32)
        {
            double x = a[columnP + r], y = a[columnQ + r];
            alpha += x * x;
            beta += y * y;
            gamma += x * y;
        }

        for (int offset = 16; offset >= 1; offset /= 2)
        {
            alpha += Warp.ShuffleXor(alpha, offset);
            beta += Warp.ShuffleXor(beta, offset);
            gamma += Warp.ShuffleXor(gamma, offset);
        }

        // Every lane holds the same sums (butterfly reduction), so every lane takes the same branch.
        if (!(Math.Abs(gamma) > tolerance * XMath.Sqrt(alpha * beta)))
        {
            return;
        }

        if (lane == 0)
        {
            rotated[0] = 1;
        }

        double zeta = (beta - alpha) / (2 * gamma);
        double t = (zeta >= 0 ? 1.0 : -1.0) / (Math.Abs(zeta) + XMath.Sqrt(1 + zeta * zeta));
        double c = 1 / XMath.Sqrt(1 + t * t);
        double s = c * t;
        for (int r = lane; r < n; r += 32)
        {
            double x = a[columnP + r], y = a[columnQ + r];
            a[columnP + r] = c * x - s * y;
            a[columnQ + r] = s * x + c * y;
            double vx = v[columnP + r], vy = v[columnQ + r];
            v[columnP + r] = c * vx - s * vy;
            v[columnQ + r] = s * vx + c * vy;
        }
    }
}
