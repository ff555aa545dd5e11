using TorchSharp;
using static TorchSharp.torch;

namespace Compression.Benchmarks;

/// <summary>
/// The algorithm of PyTorch's <c>torch.svd_lowrank</c> written with libtorch calls, because TorchSharp 0.107 declares
/// <c>torch.svd_lowrank</c> but marks it obsolete as "not implemented" (a compile error). In PyTorch it is itself a
/// composition of libtorch operations (Halko, Martinsson and Tropp 2011, algorithms 4.4 and 5.1): a Gaussian sketch of
/// q columns, <paramref name="powerIterations"/> rounds of subspace iteration with a QR after every product, then the
/// dense SVD of the small projection. The only thing lost against Python is the interpreter, which costs nothing here.
/// </summary>
internal static class TorchLowRank
{
    /// <summary>(U m×q, S q, V n×q) with A ≈ U·diag(S)·Vᵀ, for an m×n float matrix with m ≥ n or m &lt; n alike.</summary>
    public static (Tensor U, Tensor S, Tensor V) Svd(Tensor a, int q, int powerIterations)
    {
        long m = a.shape[0], n = a.shape[1];
        if (m < n)
        {
            // Work on the tall transpose, as PyTorch does, and swap the factors back.
            (Tensor u, Tensor s, Tensor v) = Svd(a.t(), q, powerIterations);
            return (v, s, u);
        }

        Tensor at = a.t();
        Tensor omega = torch.randn(n, q, dtype: a.dtype, device: a.device);
        Tensor basis = torch.linalg.qr(a.matmul(omega)).Q;
        for (int i = 0; i < powerIterations; i++)
        {
            basis = torch.linalg.qr(at.matmul(basis)).Q;
            basis = torch.linalg.qr(a.matmul(basis)).Q;
        }

        // B = Qᵀ·A is q×n; its thin SVD B = Ũ·S·Vᵀ gives A ≈ (Q·Ũ)·S·Vᵀ.
        (Tensor ub, Tensor sb, Tensor vh) = torch.linalg.svd(basis.t().matmul(a), fullMatrices: false);
        return (basis.matmul(ub), sb, vh.t());
    }
}
