// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Compression.Numerics;

/// <summary>
/// The hot loops of <see cref="Gemm"/>: register-blocked micro-kernels and the packing of operand panels into the
/// contiguous, zero-padded layout they read. No allocation, no validation: <see cref="GemmDriver{T}"/> has done it.
/// </summary>
/// <remarks>
/// Packed A: micro-panels of <c>mr</c> rows; element (r, p) of a panel at <c>p·mr + r</c>. Packed B: micro-panels of
/// <c>nr</c> columns; element (p, j) at <c>p·nr + j</c>. Rows and columns past the matrix edge are zeros, so every
/// micro-kernel call does a full tile and the edges are handled once, at write-back.
/// </remarks>
internal static unsafe class GemmKernels
{
    /// <summary>
    /// The 12 × 2·Vector512&lt;T&gt;.Count micro-kernel: <c>C[0..12, 0..nr] += α·Σₚ a[p]·b[p]ᵀ</c> over one packed A
    /// micro-panel (<paramref name="a"/>, 12 values per p) and one packed B micro-panel (<paramref name="b"/>, nr values
    /// per p). 24 of the 32 zmm registers hold the accumulators, so each packed value loaded feeds 2 (a) or 12 (b) FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel512<T>(int kc, T* a, T* b, T* c, nint ldc, T alpha)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = Vector512<T>.Count;
        Vector512<T> c00 = default, c01 = default;
        Vector512<T> c10 = default, c11 = default;
        Vector512<T> c20 = default, c21 = default;
        Vector512<T> c30 = default, c31 = default;
        Vector512<T> c40 = default, c41 = default;
        Vector512<T> c50 = default, c51 = default;
        Vector512<T> c60 = default, c61 = default;
        Vector512<T> c70 = default, c71 = default;
        Vector512<T> c80 = default, c81 = default;
        Vector512<T> c90 = default, c91 = default;
        Vector512<T> c100 = default, c101 = default;
        Vector512<T> c110 = default, c111 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<T> b0 = Vector512.Load(b);
            Vector512<T> b1 = Vector512.Load(b + w);
            Vector512<T> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00);
            c01 = Fma512(a0, b1, c01);
            Vector512<T> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10);
            c11 = Fma512(a1, b1, c11);
            Vector512<T> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20);
            c21 = Fma512(a2, b1, c21);
            Vector512<T> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30);
            c31 = Fma512(a3, b1, c31);
            Vector512<T> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40);
            c41 = Fma512(a4, b1, c41);
            Vector512<T> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50);
            c51 = Fma512(a5, b1, c51);
            Vector512<T> a6 = Vector512.Create(a[6]);
            c60 = Fma512(a6, b0, c60);
            c61 = Fma512(a6, b1, c61);
            Vector512<T> a7 = Vector512.Create(a[7]);
            c70 = Fma512(a7, b0, c70);
            c71 = Fma512(a7, b1, c71);
            Vector512<T> a8 = Vector512.Create(a[8]);
            c80 = Fma512(a8, b0, c80);
            c81 = Fma512(a8, b1, c81);
            Vector512<T> a9 = Vector512.Create(a[9]);
            c90 = Fma512(a9, b0, c90);
            c91 = Fma512(a9, b1, c91);
            Vector512<T> a10 = Vector512.Create(a[10]);
            c100 = Fma512(a10, b0, c100);
            c101 = Fma512(a10, b1, c101);
            Vector512<T> a11 = Vector512.Create(a[11]);
            c110 = Fma512(a11, b0, c110);
            c111 = Fma512(a11, b1, c111);
            a += 12;
            b += 2 * w;
        }

        Vector512<T> va = Vector512.Create(alpha);
        Store512(c + 0 * ldc, w, va, c00, c01);
        Store512(c + 1 * ldc, w, va, c10, c11);
        Store512(c + 2 * ldc, w, va, c20, c21);
        Store512(c + 3 * ldc, w, va, c30, c31);
        Store512(c + 4 * ldc, w, va, c40, c41);
        Store512(c + 5 * ldc, w, va, c50, c51);
        Store512(c + 6 * ldc, w, va, c60, c61);
        Store512(c + 7 * ldc, w, va, c70, c71);
        Store512(c + 8 * ldc, w, va, c80, c81);
        Store512(c + 9 * ldc, w, va, c90, c91);
        Store512(c + 10 * ldc, w, va, c100, c101);
        Store512(c + 11 * ldc, w, va, c110, c111);
    }

    /// <summary>
    /// The 6 × 2·Vector256&lt;T&gt;.Count micro-kernel: <c>C[0..6, 0..nr] += α·Σₚ a[p]·b[p]ᵀ</c> over one packed A
    /// micro-panel (<paramref name="a"/>, 6 values per p) and one packed B micro-panel (<paramref name="b"/>, nr values
    /// per p). 12 of the 16 ymm registers hold the accumulators.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel256<T>(int kc, T* a, T* b, T* c, nint ldc, T alpha)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = Vector256<T>.Count;
        Vector256<T> c00 = default, c01 = default;
        Vector256<T> c10 = default, c11 = default;
        Vector256<T> c20 = default, c21 = default;
        Vector256<T> c30 = default, c31 = default;
        Vector256<T> c40 = default, c41 = default;
        Vector256<T> c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<T> b0 = Vector256.Load(b);
            Vector256<T> b1 = Vector256.Load(b + w);
            Vector256<T> a0 = Vector256.Create(a[0]);
            c00 = Fma256(a0, b0, c00);
            c01 = Fma256(a0, b1, c01);
            Vector256<T> a1 = Vector256.Create(a[1]);
            c10 = Fma256(a1, b0, c10);
            c11 = Fma256(a1, b1, c11);
            Vector256<T> a2 = Vector256.Create(a[2]);
            c20 = Fma256(a2, b0, c20);
            c21 = Fma256(a2, b1, c21);
            Vector256<T> a3 = Vector256.Create(a[3]);
            c30 = Fma256(a3, b0, c30);
            c31 = Fma256(a3, b1, c31);
            Vector256<T> a4 = Vector256.Create(a[4]);
            c40 = Fma256(a4, b0, c40);
            c41 = Fma256(a4, b1, c41);
            Vector256<T> a5 = Vector256.Create(a[5]);
            c50 = Fma256(a5, b0, c50);
            c51 = Fma256(a5, b1, c51);
            a += 6;
            b += 2 * w;
        }

        Vector256<T> va = Vector256.Create(alpha);
        Store256(c + 0 * ldc, w, va, c00, c01);
        Store256(c + 1 * ldc, w, va, c10, c11);
        Store256(c + 2 * ldc, w, va, c20, c21);
        Store256(c + 3 * ldc, w, va, c30, c31);
        Store256(c + 4 * ldc, w, va, c40, c41);
        Store256(c + 5 * ldc, w, va, c50, c51);
    }

    /// <summary>The portable micro-kernel (4 × 4 scalars) for machines without 256-bit SIMD.</summary>
    public static void KernelScalar<T>(int kc, T* a, T* b, T* c, nint ldc, T alpha)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        const int Mr = 4, Nr = 4;
        T* acc = stackalloc T[Mr * Nr];
        for (int i = 0; i < Mr * Nr; i++)
        {
            acc[i] = T.Zero;
        }

        for (int p = 0; p < kc; p++)
        {
            for (int r = 0; r < Mr; r++)
            {
                T ar = a[r];
                for (int j = 0; j < Nr; j++)
                {
                    acc[r * Nr + j] = T.FusedMultiplyAdd(ar, b[j], acc[r * Nr + j]);
                }
            }

            a += Mr;
            b += Nr;
        }

        for (int r = 0; r < Mr; r++)
        {
            for (int j = 0; j < Nr; j++)
            {
                c[r * ldc + j] = T.FusedMultiplyAdd(alpha, acc[r * Nr + j], c[r * ldc + j]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma512<T>(Vector512<T> x, Vector512<T> y, Vector512<T> addend)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // typeof(T) tests are constants in each instantiation, so only one branch survives JIT compilation.
        if (typeof(T) == typeof(float))
        {
            return Avx512F.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), addend.AsSingle()).As<float, T>();
        }

        return Avx512F.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), addend.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma256<T>(Vector256<T> x, Vector256<T> y, Vector256<T> addend)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!Fma.IsSupported)
        {
            return x * y + addend;
        }

        if (typeof(T) == typeof(float))
        {
            return Fma.MultiplyAdd(x.AsSingle(), y.AsSingle(), addend.AsSingle()).As<float, T>();
        }

        return Fma.MultiplyAdd(x.AsDouble(), y.AsDouble(), addend.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512<T>(T* c, int w, Vector512<T> alpha, Vector512<T> lo, Vector512<T> hi)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Fma512(alpha, lo, Vector512.Load(c)).Store(c);
        Fma512(alpha, hi, Vector512.Load(c + w)).Store(c + w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256<T>(T* c, int w, Vector256<T> alpha, Vector256<T> lo, Vector256<T> hi)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Fma256(alpha, lo, Vector256.Load(c)).Store(c);
        Fma256(alpha, hi, Vector256.Load(c + w)).Store(c + w);
    }

    /// <summary>
    /// Packs rows [0, rows) × columns [0, kc) of op(A), whose element (i, p) is <c>a[i·lda + p]</c> (or
    /// <c>a[p·lda + i]</c> when <paramref name="transpose"/>), into micro-panels of <paramref name="mr"/> rows.
    /// </summary>
    public static void PackA<T>(T* a, nint lda, bool transpose, int rows, int kc, int mr, T* dest)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i0 = 0; i0 < rows; i0 += mr)
        {
            int valid = Math.Min(mr, rows - i0);
            T* panel = dest + (nint)i0 * kc;
            if (transpose)
            {
                // Stored k × m: each p contributes a contiguous run of the panel's rows.
                for (int p = 0; p < kc; p++)
                {
                    T* src = a + p * lda + i0;
                    T* dst = panel + p * mr;
                    int r = 0;
                    for (; r < valid; r++)
                    {
                        dst[r] = src[r];
                    }

                    for (; r < mr; r++)
                    {
                        dst[r] = T.Zero;
                    }
                }
            }
            else
            {
                // Read each row contiguously, write with stride mr: the reads are the expensive side.
                for (int r = 0; r < mr; r++)
                {
                    T* dst = panel + r;
                    if (r < valid)
                    {
                        T* src = a + (i0 + r) * lda;
                        for (int p = 0; p < kc; p++)
                        {
                            dst[p * mr] = src[p];
                        }
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++)
                        {
                            dst[p * mr] = T.Zero;
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs rows [0, kc) × columns [0, cols) of op(B), whose element (p, j) is <c>b[p·ldb + j]</c> (or
    /// <c>b[j·ldb + p]</c> when <paramref name="transpose"/>), into micro-panels of <paramref name="nr"/> columns.
    /// </summary>
    public static void PackB<T>(T* b, nint ldb, bool transpose, int kc, int cols, int nr, T* dest)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int j0 = 0; j0 < cols; j0 += nr)
        {
            int valid = Math.Min(nr, cols - j0);
            T* panel = dest + (nint)j0 * kc;
            if (transpose)
            {
                for (int j = 0; j < nr; j++)
                {
                    T* dst = panel + j;
                    if (j < valid)
                    {
                        T* src = b + (j0 + j) * ldb;
                        for (int p = 0; p < kc; p++)
                        {
                            dst[p * nr] = src[p];
                        }
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++)
                        {
                            dst[p * nr] = T.Zero;
                        }
                    }
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    T* src = b + p * ldb + j0;
                    T* dst = panel + p * nr;
                    new ReadOnlySpan<T>(src, valid).CopyTo(new Span<T>(dst, valid));
                    if (valid < nr)
                    {
                        new Span<T>(dst + valid, nr - valid).Clear();
                    }
                }
            }
        }
    }
}
