// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using ILGPU;

namespace Compression.LowRank.Gpu;

/// <summary>
/// Device code of the randomized SVD's heavy products: a thin panel P (k × L, row-major, float32; a tall m×k or n×k
/// matrix stored transposed, as the host's Householder QR keeps it) times the resident matrix A (rows × columns,
/// row-major, float32), either as is (<c>C = P·A</c>, k × columns, the reduction over A's rows: Zᵀ = Qᵀ·A and
/// B = Qᵀ·A) or transposed (<c>C = P·Aᵀ</c>, k × rows, the reduction over A's columns: Yᵀ = (A·Ω)ᵀ = Ωᵀ·Aᵀ).
/// </summary>
/// <remarks>
/// <para>A group of 16×16 threads computes one 64×64 tile of C, each thread a 4×4 block in registers (rows ty + 16·a,
/// columns tx + 16·b), stepping through the reduction 16 at a time with both operands' slices staged in shared
/// memory: every staged value is used 64 times. Slices are stored reduction-major with a stride of 65 so that the
/// transposing stores (16 consecutive reduction indices of one row per 16 threads, for coalesced global reads) hit
/// at most two threads per bank, and the inner loop's reads are broadcasts or consecutive.</para>
/// <para>Accumulation is float32. A is float32 already (the rounding of the stored weight is larger than anything
/// added here), the products of the range finder only have to span the right subspace (the host re-orthonormalises
/// them in float64, so a small perturbation of Y moves nothing that matters), and the last product B = Qᵀ·A carries
/// a forward error of at most γ_m·|Q|ᵀ|A| (γ_m ≈ m·2⁻²⁴, typically √m·2⁻²⁴ ≈ 4e-6 relative at m = 4096), below the
/// 16-bit storage of the factors and the randomized approximation error itself. Float64 would run at the FP64 rate,
/// half of FP32 on data-centre GPUs and 1/64 on consumer ones, for no visible gain.</para>
/// <para>The mode flag is uniform over the grid, so its branches cost nothing in divergence; C is overwritten (never
/// read) inside its k × outColumns bounds and nothing outside them is touched.</para>
/// </remarks>
internal static class PanelProductKernels
{
    /// <summary>Edge of the square tile of C computed by one group.</summary>
    public const int Tile = 64;

    /// <summary>Reduction indices staged per step.</summary>
    public const int Step = 16;

    /// <summary>Threads along each side of a group (16×16).</summary>
    public const int Threads = 16;

    // Row stride of the staged slices: one more than the tile so that column-wise stores spread over the banks.
    private const int Stride = Tile + 1;

    /// <summary>
    /// <c>C = P·A</c> (<paramref name="transpose"/> = 0; P is k × rows, C is k × columns) or <c>C = P·Aᵀ</c>
    /// (<paramref name="transpose"/> = 1; P is k × columns, C is k × rows). Grid: (⌈outColumns/64⌉, ⌈k/64⌉) groups of
    /// 16×16 threads.
    /// </summary>
    public static void Product(ArrayView<float> panel, ArrayView<float> a, ArrayView<float> c, int k, int rows, int columns, int transpose)
    {
        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * Threads + tx;
        ArrayView<float> left = SharedMemory.Allocate<float>(Step * Stride);    // P[rowBase + s, r0 + r] at r·65 + s
        ArrayView<float> right = SharedMemory.Allocate<float>(Step * Stride);   // op(A)[r0 + r, columnBase + j] at r·65 + j
        int reduction = transpose != 0 ? columns : rows;
        int outColumns = transpose != 0 ? rows : columns;
        int rowBase = Grid.IdxY * Tile, columnBase = Grid.IdxX * Tile;

        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int r0 = 0; r0 < reduction; r0 += Step)
        {
            // 256 threads stage 2 × 16 × 64 values, four of each per thread.
            for (int e = thread; e < Step * Tile; e += Threads * Threads)
            {
                int s = e / Step, r = e % Step;
                bool inReduction = r0 + r < reduction;
                left[r * Stride + s] = inReduction && rowBase + s < k ? panel[(long)(rowBase + s) * reduction + r0 + r] : 0f;
                if (transpose != 0)
                {
                    // op(A)[r, j] = A[j, r]: a row of A is contiguous along the reduction.
                    right[r * Stride + s] = inReduction && columnBase + s < outColumns ? a[(long)(columnBase + s) * columns + r0 + r] : 0f;
                }
                else
                {
                    int rr = e / Tile, j = e % Tile;
                    right[rr * Stride + j] = r0 + rr < reduction && columnBase + j < outColumns ? a[(long)(r0 + rr) * columns + columnBase + j] : 0f;
                }
            }

            Group.Barrier();
            for (int r = 0; r < Step; r++)
            {
                int o = r * Stride;
                float l0 = left[o + ty], l1 = left[o + ty + 16], l2 = left[o + ty + 32], l3 = left[o + ty + 48];
                float q0 = right[o + tx], q1 = right[o + tx + 16], q2 = right[o + tx + 32], q3 = right[o + tx + 48];
                a00 += l0 * q0; a01 += l0 * q1; a02 += l0 * q2; a03 += l0 * q3;
                a10 += l1 * q0; a11 += l1 * q1; a12 += l1 * q2; a13 += l1 * q3;
                a20 += l2 * q0; a21 += l2 * q1; a22 += l2 * q2; a23 += l2 * q3;
                a30 += l3 * q0; a31 += l3 * q1; a32 += l3 * q2; a33 += l3 * q3;
            }

            Group.Barrier();
        }

        StoreRow(c, k, outColumns, rowBase + ty, columnBase + tx, a00, a01, a02, a03);
        StoreRow(c, k, outColumns, rowBase + ty + 16, columnBase + tx, a10, a11, a12, a13);
        StoreRow(c, k, outColumns, rowBase + ty + 32, columnBase + tx, a20, a21, a22, a23);
        StoreRow(c, k, outColumns, rowBase + ty + 48, columnBase + tx, a30, a31, a32, a33);
    }

    private static void StoreRow(ArrayView<float> c, int k, int outColumns, int row, int column, float v0, float v1, float v2, float v3)
    {
        if (row >= k)
        {
            return;
        }

        long offset = (long)row * outColumns;
        Store(c, offset, column, outColumns, v0);
        Store(c, offset, column + 16, outColumns, v1);
        Store(c, offset, column + 32, outColumns, v2);
        Store(c, offset, column + 48, outColumns, v3);
    }

    private static void Store(ArrayView<float> c, long offset, int column, int outColumns, float value)
    {
        if (column < outColumns)
        {
            c[offset + column] = value;
        }
    }
}
