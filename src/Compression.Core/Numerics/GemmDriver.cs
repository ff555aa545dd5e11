// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Threading.Tasks;

namespace Compression.Numerics;

/// <summary>
/// Orchestration of <see cref="Gemm"/> (the Goto/BLIS loop nest): splits C into tasks run by <see cref="Parallel"/>,
/// and within a task walks K in blocks of <c>kc</c>, packs a <c>kc × nc</c> block of B (kept in L2) and
/// <c>mc × kc</c> blocks of A, and sweeps micro-kernels over them. Arguments are trusted (validated by <see cref="Gemm"/>).
/// </summary>
/// <remarks>
/// Each task packs its own panels, so tasks share nothing but read-only A and B and disjoint tiles of C. B is packed
/// once per task and K block and reused over the task's <c>mt</c> rows, which keeps packing below a few percent of
/// the work even for transposed (gathered) operands.
/// </remarks>
internal static unsafe class GemmDriver<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    private enum KernelKind
    {
        Vector512,
        Vector256,
        Scalar,
    }

    // Below this many multiply-adds a single thread wins: Parallel.For costs a few microseconds to start.
    private const long ParallelThreshold = 1L << 20;

    private static readonly KernelKind s_kind;
    private static readonly int s_mr;
    private static readonly int s_nr;
    private static readonly int s_kc;
    private static readonly int s_mc;
    private static readonly int s_nc;

#pragma warning disable CA1810 // The blocking depends on the ISA found at run time; a static constructor says so in one place.
    static GemmDriver()
#pragma warning restore CA1810
    {
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            (s_kind, s_mr, s_nr) = (KernelKind.Vector512, 12, 2 * Vector512<T>.Count);
        }
        else if (Vector256.IsHardwareAccelerated && Avx.IsSupported)
        {
            (s_kind, s_mr, s_nr) = (KernelKind.Vector256, 6, 2 * Vector256<T>.Count);
        }
        else
        {
            (s_kind, s_mr, s_nr) = (KernelKind.Scalar, 4, 4);
        }

        // kc·mr·sizeof(T) ≈ 12 KiB: the A micro-panel stays in a 32 KiB L1 while the B block (kc × nc ≈ 256 KiB)
        // streams from a 1 MiB L2; mc only bounds the packed A buffer.
        s_kc = 1024 / sizeof(T);
        s_nc = 256;
        s_mc = 8 * s_mr;
    }

    /// <summary>
    /// C = α·op(A)·op(B) + β·C with C m × n and K = k; when <paramref name="lowerOnly"/>, only the elements with
    /// column ≤ row are read or written (the symmetric rank-k update).
    /// </summary>
    public static void Run(
        bool transA, bool transB, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc,
        bool lowerOnly)
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        int tilesN = (n + s_nc - 1) / s_nc;
        int threads = Environment.ProcessorCount;
        long work = (long)m * n * k;
        int rowChunks = 1;
        if (threads > 1 && work >= ParallelThreshold)
        {
            // About four tasks per thread so the dynamic scheduling evens out edges and the triangle of lowerOnly.
            rowChunks = Math.Max(1, (4 * threads + tilesN - 1) / tilesN);
        }

        int mt = (m + rowChunks - 1) / rowChunks;
        mt = Math.Max(s_mr, (mt + s_mr - 1) / s_mr * s_mr);
        int tilesM = (m + mt - 1) / mt;
        var problem = new Problem(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, lowerOnly, mt);
        int tasks = tilesM * tilesN;
        if (tasks == 1)
        {
            RunTile(problem, 0, 0);
            return;
        }

        Parallel.For(0, tasks, t => RunTile(problem, t / tilesN * mt, t % tilesN * s_nc));
    }

    private static void RunTile(in Problem p, int rowStart, int colStart)
    {
        int rowEnd = Math.Min(p.M, rowStart + p.RowsPerTask);
        int nc = Math.Min(s_nc, p.N - colStart);
        if (p.LowerOnly && colStart > rowEnd - 1)
        {
            return;
        }

        ScaleTile(p, rowStart, rowEnd, colStart, colStart + nc);
        if (p.K == 0 || p.Alpha == T.Zero)
        {
            return;
        }

        int mr = s_mr, nr = s_nr;
        int ncPadded = (nc + nr - 1) / nr * nr;
        T[] packedA = ArrayPool<T>.Shared.Rent(s_mc * s_kc);
        T[] packedB = ArrayPool<T>.Shared.Rent(s_kc * ncPadded);
        T* scratch = stackalloc T[mr * nr];
        try
        {
            fixed (T* pa = packedA, pb = packedB)
            {
                for (int p0 = 0; p0 < p.K; p0 += s_kc)
                {
                    int kc = Math.Min(s_kc, p.K - p0);
                    T* bBlock = p.TransB ? p.B + colStart * p.Ldb + p0 : p.B + p0 * p.Ldb + colStart;
                    GemmKernels.PackB(bBlock, p.Ldb, p.TransB, kc, nc, nr, pb);
                    for (int i0 = rowStart; i0 < rowEnd; i0 += s_mc)
                    {
                        int mc = Math.Min(s_mc, rowEnd - i0);
                        if (p.LowerOnly && colStart > i0 + mc - 1)
                        {
                            continue;
                        }

                        T* aBlock = p.TransA ? p.A + p0 * p.Lda + i0 : p.A + i0 * p.Lda + p0;
                        GemmKernels.PackA(aBlock, p.Lda, p.TransA, mc, kc, mr, pa);
                        MacroKernel(p, i0, mc, colStart, nc, kc, pa, pb, scratch);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(packedA);
            ArrayPool<T>.Shared.Return(packedB);
        }
    }

    private static void MacroKernel(in Problem p, int i0, int mc, int j0, int nc, int kc, T* pa, T* pb, T* scratch)
    {
        int mr = s_mr, nr = s_nr;
        for (int ir = 0; ir < mc; ir += mr)
        {
            int row = i0 + ir;
            int rows = Math.Min(mr, mc - ir);
            T* aPanel = pa + (nint)ir * kc;
            for (int jr = 0; jr < nc; jr += nr)
            {
                int col = j0 + jr;
                if (p.LowerOnly && col > row + rows - 1)
                {
                    break;
                }

                int cols = Math.Min(nr, nc - jr);
                T* bPanel = pb + (nint)jr * kc;
                bool crossesDiagonal = p.LowerOnly && col + cols - 1 > row;
                if (rows == mr && cols == nr && !crossesDiagonal)
                {
                    Kernel(kc, aPanel, bPanel, p.C + row * p.Ldc + col, p.Ldc, p.Alpha);
                    continue;
                }

                // Edge or diagonal tile: compute the full padded tile aside, then add only the valid part.
                new Span<T>(scratch, mr * nr).Clear();
                Kernel(kc, aPanel, bPanel, scratch, nr, T.One);
                for (int r = 0; r < rows; r++)
                {
                    T* cRow = p.C + (row + r) * p.Ldc + col;
                    int limit = p.LowerOnly ? Math.Min(cols, row + r - col + 1) : cols;
                    for (int j = 0; j < limit; j++)
                    {
                        cRow[j] = T.FusedMultiplyAdd(p.Alpha, scratch[r * nr + j], cRow[j]);
                    }
                }
            }
        }
    }

    private static void Kernel(int kc, T* a, T* b, T* c, nint ldc, T alpha)
    {
        switch (s_kind)
        {
            case KernelKind.Vector512:
                GemmKernels.Kernel512(kc, a, b, c, ldc, alpha);
                break;
            case KernelKind.Vector256:
                GemmKernels.Kernel256(kc, a, b, c, ldc, alpha);
                break;
            default:
                GemmKernels.KernelScalar(kc, a, b, c, ldc, alpha);
                break;
        }
    }

    private static void ScaleTile(in Problem p, int rowStart, int rowEnd, int colStart, int colEnd)
    {
        if (p.Beta == T.One)
        {
            return;
        }

        for (int i = rowStart; i < rowEnd; i++)
        {
            int end = p.LowerOnly ? Math.Min(colEnd, i + 1) : colEnd;
            if (end <= colStart)
            {
                continue;
            }

            var row = new Span<T>(p.C + i * p.Ldc + colStart, end - colStart);
            if (p.Beta == T.Zero)
            {
                // BLAS semantics: β = 0 means C is output only, so NaN or garbage in it must not leak through.
                row.Clear();
            }
            else
            {
                for (int j = 0; j < row.Length; j++)
                {
                    row[j] *= p.Beta;
                }
            }
        }
    }

    private readonly struct Problem(
        bool transA, bool transB, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc,
        bool lowerOnly, int rowsPerTask)
    {
        public readonly bool TransA = transA;
        public readonly bool TransB = transB;
        public readonly int M = m;
        public readonly int N = n;
        public readonly int K = k;
        public readonly T Alpha = alpha;
        public readonly T* A = a;
        public readonly nint Lda = lda;
        public readonly T* B = b;
        public readonly nint Ldb = ldb;
        public readonly T Beta = beta;
        public readonly T* C = c;
        public readonly nint Ldc = ldc;
        public readonly bool LowerOnly = lowerOnly;
        public readonly int RowsPerTask = rowsPerTask;
    }
}
