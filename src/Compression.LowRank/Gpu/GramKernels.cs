// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using ILGPU;

namespace Compression.LowRank.Gpu;

/// <summary>
/// Device code of the panel Gram products of the randomized SVD's orthonormalisation: <c>C = X·Yᵀ</c> for two thin
/// float32 panels X and Y (k × L, row-major), accumulated in float64.
/// </summary>
/// <remarks>
/// Float64 because CholeskyQR squares the panel's condition number: a float32 Gram matrix would lose everything below
/// about 2⁻¹²·σ₁ of the panel, a float64 one (whose products of float32 values are exact) keeps the panel's own
/// float32 accuracy. The work is small (2·k²·L flops, k ≈ 266 against a 4096-long reduction), so a plain 16×16 tile
/// per group with the slices in shared memory is enough.
/// </remarks>
internal static class GramKernels
{
    /// <summary>Edge of the square tile of C computed by one group (one value per thread).</summary>
    public const int Tile = 16;

    // Padded row stride of the staged slices: thread tx reads row tx, so an unpadded stride of 16 would put the reads
    // of a warp's two rows of 16 threads in the same two banks.
    private const int Stride = Tile + 1;

    /// <summary>
    /// <c>C = X·Yᵀ</c> (k × k, row-major, float64); with <paramref name="symmetric"/> = 1 (X = Y) only the tiles on or
    /// above the diagonal are computed and each value is written to both triangles. Grid: (⌈k/16⌉, ⌈k/16⌉) groups of
    /// 16×16 threads.
    /// </summary>
    public static void CrossGram(ArrayView<float> x, ArrayView<float> y, ArrayView<double> c, int k, int length, int symmetric)
    {
        int tx = Group.IdxX, ty = Group.IdxY;
        int rowBase = Grid.IdxY * Tile, columnBase = Grid.IdxX * Tile;
        ArrayView<float> xs = SharedMemory.Allocate<float>(Tile * Stride);
        ArrayView<float> ys = SharedMemory.Allocate<float>(Tile * Stride);
        // Uniform over the group, so leaving before the barriers is safe.
        if (symmetric != 0 && columnBase + Tile <= rowBase)
        {
            return;
        }

        int xRow = rowBase + ty, yRow = columnBase + ty;
        double sum = 0;
        for (int l0 = 0; l0 < length; l0 += Tile)
        {
            int l = l0 + tx;
            xs[ty * Stride + tx] = xRow < k && l < length ? x[(long)xRow * length + l] : 0f;
            ys[ty * Stride + tx] = yRow < k && l < length ? y[(long)yRow * length + l] : 0f;
            Group.Barrier();
            for (int t = 0; t < Tile; t++)
            {
                sum += (double)xs[ty * Stride + t] * ys[tx * Stride + t];
            }

            Group.Barrier();
        }

        int i = rowBase + ty, j = columnBase + tx;
        if (i < k && j < k)
        {
            c[(long)i * k + j] = sum;
            if (symmetric != 0)
            {
                // The mirrored thread of a diagonal tile computes the same products in the same order: same bits.
                c[(long)j * k + i] = sum;
            }
        }
    }
}
