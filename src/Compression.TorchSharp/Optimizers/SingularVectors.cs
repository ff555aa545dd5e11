// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Optimizers;

/// <summary>The top-r left singular vectors of a matrix, exactly or by a randomized range finder.</summary>
internal static class SingularVectors
{
    // Extra test vectors and power iterations of the randomized finder: Halko et al. (2011) recommend 5–10 and 1–2;
    // gradients have slowly decaying spectra, so take the upper ends.
    private const int Oversampling = 10;
    private const int PowerIterations = 2;

    /// <summary>U[:, :r] of A = U·S·Vᵀ (d×r, orthonormal columns, in order of decreasing singular value), computed in
    /// float32, or float64 when A is float64.</summary>
    public static Tensor TopLeft(Tensor a, int rank, GaLoreSvdMethod method, long seed)
    {
        using var scope = NewDisposeScope();
        // SVD in half precision is neither supported everywhere nor accurate; float32 is what GaLore uses too.
        Tensor m = a.dtype == ScalarType.Float64 ? a.detach() : a.detach().to(ScalarType.Float32);
        Tensor u = method == GaLoreSvdMethod.Exact || rank + Oversampling >= Math.Min(m.shape[0], m.shape[1])
            ? Exact(m, rank)
            : Randomized(m, rank, seed);
        return u.contiguous().MoveToOuterDisposeScope();
    }

    private static Tensor Exact(Tensor m, int rank)
    {
        var (u, _, _) = torch.linalg.svd(m, fullMatrices: false);
        return u.narrow(1, 0, rank);
    }

    private static Tensor Randomized(Tensor m, int rank, long seed)
    {
        long columns = m.shape[1];
        int k = rank + Oversampling;
        using var generator = new Generator((ulong)seed, m.device);
        Tensor omega = torch.randn([columns, k], dtype: m.dtype, device: m.device, generator: generator);
        // Re-orthonormalise between the products: without it the power iterations lose the small singular directions
        // to rounding (Halko et al., Algorithm 4.4).
        Tensor q = Orthonormal(m.matmul(omega));
        for (int i = 0; i < PowerIterations; i++)
        {
            q = Orthonormal(m.matmul(Orthonormal(m.t().matmul(q))));
        }

        var (ub, _, _) = torch.linalg.svd(q.t().matmul(m), fullMatrices: false);
        return q.matmul(ub.narrow(1, 0, rank));
    }

    private static Tensor Orthonormal(Tensor y) => torch.linalg.qr(y, torch.linalg.QRMode.Reduced).Q;
}
