// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Gpu.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.LowRank.Gpu;

/// <summary>
/// Launches <see cref="PanelProductKernels.Product"/>: a thin float32 panel (k × L, row-major) times the resident
/// matrix A or its transpose, on the context's default stream (asynchronous: the caller synchronises or copies back).
/// </summary>
internal static class GpuPanelProducts
{
    private static readonly object s_product = new();

    /// <summary>
    /// <c>C = P·A</c> (P k × rows, C k × columns) or, when <paramref name="transpose"/>, <c>C = P·Aᵀ</c> (P k × columns,
    /// C k × rows), for A rows × columns; C is overwritten.
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive or a view is shorter than its shape.</exception>
    public static void Multiply(GpuContext gpu, ArrayView<float> panel, ArrayView<float> a, ArrayView<float> c,
        int k, int rows, int columns, bool transpose)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        if (k <= 0 || rows <= 0 || columns <= 0)
        {
            throw new ArgumentException($"The product is {k}×({rows}×{columns}); every size must be positive.", nameof(k));
        }

        int reduction = transpose ? columns : rows, outColumns = transpose ? rows : columns;
        Require(panel.Length, (long)k * reduction, nameof(panel));
        Require(a.Length, (long)rows * columns, nameof(a));
        Require(c.Length, (long)k * outColumns, nameof(c));

        var product = gpu.GetOrLoadKernel(s_product, accelerator =>
            accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(PanelProductKernels.Product));
        const int Tile = PanelProductKernels.Tile;
        var grid = new Index2D((outColumns + Tile - 1) / Tile, (k + Tile - 1) / Tile);
        var group = new Index2D(PanelProductKernels.Threads, PanelProductKernels.Threads);
        product(new KernelConfig(grid, group), panel, a, c, k, rows, columns, transpose ? 1 : 0);
    }

    /// <summary>Flops of one product: 2·k·rows·columns.</summary>
    public static double Flops(int k, int rows, int columns) => 2.0 * k * rows * columns;

    private static void Require(long length, long needed, string name)
    {
        if (length < needed)
        {
            throw new ArgumentException($"The view holds {length} values; the product needs {needed}.", name);
        }
    }
}
