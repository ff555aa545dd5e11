// Sparse × dense products Y = X·Wᵀ on the best ILGPU accelerator (Compression.Gpu.Sparse), beside a dense product on
// the same device, for the CPU benchmark's grid (benchmarks/README.md, "Sparse × dense"):
//   Compression.GpuBench sparse [size [repetitions]]          (default 4096, 50)
// CSR (uint16 columns) on unstructured random masks and BSR with 16×16 blocks on block-random masks, sparsities
// 50–95%, batch 1, 8 and 64; medians of synchronised runs, no transfers in the timed region. The dense reference is
// a plain shared-memory tiled ILGPU GEMM (16×16 tiles, not cuBLAS: a floor for what dense costs, not a ceiling).
// Before timing, every sparse result is compared with the dense kernel's (relative error ≤ 1e-4 of Σ|w·x|). The 2:4
// decompression of the whole weight is timed against a device copy of the dense weight.

using System.Diagnostics;
using System.Globalization;
using Compression.Gpu.Runtime;
using Compression.Gpu.Sparse;
using ILGPU;
using ILGPU.Runtime;

internal static class SparseProducts
{
    private const int Block = 16;
    private const int Tile = 16;

    public static int Run(string[] args)
    {
        int size = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4096;
        int repetitions = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 50;
        if (!GpuContext.TryCreateBest(out GpuContext? found, out string reason))
        {
            Console.Error.WriteLine(reason);
            return 2;
        }

        using GpuContext gpu = found!;
        Accelerator accelerator = gpu.Accelerator;
        Console.WriteLine($"device: {gpu.Kind} {gpu.DeviceName}; weight {size}×{size} float32; median of {repetitions}");
        var dense = DenseKernel(accelerator);
        var random = new Random(3);
        float[] weight = new float[(long)size * size];
        for (int i = 0; i < weight.Length; i++)
        {
            weight[i] = (float)(random.NextDouble() - 0.5);
        }

        using MemoryBuffer1D<float, Stride1D.Dense> w = accelerator.Allocate1D(weight);
        int failures = 0;
        Console.WriteLine($"{"batch",5} {"sparsity",8} {"dense",10} {"csr",10} {"bsr16",10} {"csr/dense",9} {"bsr/dense",9}");
        foreach (int batch in new[] { 1, 8, 64 })
        {
            float[] xHost = Enumerable.Range(0, batch * size).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
            using MemoryBuffer1D<float, Stride1D.Dense> x = accelerator.Allocate1D(xHost);
            using MemoryBuffer1D<float, Stride1D.Dense> y = accelerator.Allocate1D<float>((long)batch * size);
            using MemoryBuffer1D<float, Stride1D.Dense> reference = accelerator.Allocate1D<float>((long)batch * size);
            var config = new KernelConfig(new Index2D((size + Tile - 1) / Tile, (batch + Tile - 1) / Tile), new Index2D(Tile, Tile));
            foreach (double sparsity in new[] { 0.5, 0.7, 0.8, 0.9, 0.95 })
            {
                // The same weight with its pruned entries zeroed, for the dense product and the check.
                (int[] pointers, ushort[] columns, float[] values, float[] masked) = Csr(weight, size, sparsity, random);
                (int[] blockPointers, ushort[] blockColumns, float[] blockValues, float[] blockMasked) = Bsr(weight, size, sparsity, random);
                using MemoryBuffer1D<int, Stride1D.Dense> p = accelerator.Allocate1D(pointers);
                using MemoryBuffer1D<ushort, Stride1D.Dense> c = accelerator.Allocate1D(columns);
                using MemoryBuffer1D<float, Stride1D.Dense> v = accelerator.Allocate1D(values);
                using MemoryBuffer1D<int, Stride1D.Dense> bp = accelerator.Allocate1D(blockPointers);
                using MemoryBuffer1D<ushort, Stride1D.Dense> bc = accelerator.Allocate1D(blockColumns);
                using MemoryBuffer1D<float, Stride1D.Dense> bv = accelerator.Allocate1D(blockValues);

                w.View.BaseView.CopyFromCPU(masked);
                dense(config, x.View, w.View, reference.View, batch, size, size);
                GpuSparseMatrixMultiply.MultiplyCsr(gpu, size, size, p.View, c.View, v.View, x.View, batch, y.View);
                failures += Check("csr", reference, y, xHost, masked, batch, size);
                w.View.BaseView.CopyFromCPU(blockMasked);
                dense(config, x.View, w.View, reference.View, batch, size, size);
                GpuSparseMatrixMultiply.MultiplyBsr(gpu, size, size, Block, Block, bp.View, bc.View, bv.View, x.View, batch, y.View);
                failures += Check("bsr", reference, y, xHost, blockMasked, batch, size);

                double denseMs = Median(repetitions, () => dense(config, x.View, w.View, y.View, batch, size, size), accelerator);
                double csrMs = Median(repetitions, () => GpuSparseMatrixMultiply.MultiplyCsr(gpu, size, size, p.View, c.View, v.View, x.View, batch, y.View), accelerator);
                double bsrMs = Median(repetitions, () => GpuSparseMatrixMultiply.MultiplyBsr(gpu, size, size, Block, Block, bp.View, bc.View, bv.View, x.View, batch, y.View), accelerator);
                Console.WriteLine($"{batch,5} {sparsity,8:P0} {denseMs,7:F3} ms {csrMs,7:F3} ms {bsrMs,7:F3} ms {csrMs / denseMs,9:F2} {bsrMs / denseMs,9:F2}");
            }
        }

        // 2:4 decompression: half the weights as values, 2 bits of index each, expanded to the dense weight.
        long slots = (long)size * size / 2;
        var packedValues = new float[slots];
        var indices = new byte[slots / 4];
        for (long g = 0; g < slots / 2; g++)
        {
            int first = random.Next(3), second = first + 1 + random.Next(3 - first);
            indices[g / 2] |= (byte)((first | second << 2) << (int)(4 * (g % 2)));
            packedValues[2 * g] = weight[2 * g];
            packedValues[2 * g + 1] = weight[2 * g + 1];
        }

        using MemoryBuffer1D<float, Stride1D.Dense> pv = accelerator.Allocate1D(packedValues);
        using MemoryBuffer1D<byte, Stride1D.Dense> pi = accelerator.Allocate1D(indices);
        using MemoryBuffer1D<float, Stride1D.Dense> expanded = accelerator.Allocate1D<float>((long)size * size);
        double copyMs = Median(repetitions, () => expanded.View.CopyFrom(w.View), accelerator);
        double decompressMs = Median(repetitions, () => GpuSparseMatrixMultiply.DecompressSemiStructured(gpu, size, size, pv.View, pi.View, expanded.View), accelerator);
        Console.WriteLine($"2:4 decompress {size}×{size}: {decompressMs:F3} ms (device copy of the dense weight {copyMs:F3} ms)");
        return failures == 0 ? 0 : 1;
    }

    /// <summary>Y = X·Wᵀ, one 16×16 tile of Y per group, X and W staged through shared memory in 16-wide slices.</summary>
    private static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> DenseKernel(Accelerator accelerator) =>
        accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(DenseTiled);

    private static void DenseTiled(ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, int batch, int rows, int inputs)
    {
        ArrayView<float> xs = SharedMemory.Allocate<float>(Tile * Tile);
        ArrayView<float> ws = SharedMemory.Allocate<float>(Tile * Tile);
        int tx = Group.IdxX, ty = Group.IdxY;
        int row = Grid.IdxX * Tile + tx, b = Grid.IdxY * Tile + ty;
        float sum = 0;
        for (int k0 = 0; k0 < inputs; k0 += Tile)
        {
            xs[ty * Tile + tx] = b < batch && k0 + tx < inputs ? x[(long)b * inputs + k0 + tx] : 0f;
            int wRow = Grid.IdxX * Tile + ty;
            ws[ty * Tile + tx] = wRow < rows && k0 + tx < inputs ? w[(long)wRow * inputs + k0 + tx] : 0f;
            Group.Barrier();
            for (int k = 0; k < Tile; k++)
            {
                sum += xs[ty * Tile + k] * ws[tx * Tile + k];
            }

            Group.Barrier();
        }

        if (row < rows && b < batch)
        {
            y[(long)b * rows + row] = sum;
        }
    }

    private static (int[], ushort[], float[], float[]) Csr(float[] weight, int size, double sparsity, Random random)
    {
        var pointers = new int[size + 1];
        var columns = new List<ushort>();
        var values = new List<float>();
        var masked = new float[weight.Length];
        for (int r = 0; r < size; r++)
        {
            for (int c = 0; c < size; c++)
            {
                if (random.NextDouble() >= sparsity)
                {
                    columns.Add((ushort)c);
                    values.Add(weight[(long)r * size + c]);
                    masked[(long)r * size + c] = weight[(long)r * size + c];
                }
            }

            pointers[r + 1] = columns.Count;
        }

        return (pointers, columns.ToArray(), values.ToArray(), masked);
    }

    private static (int[], ushort[], float[], float[]) Bsr(float[] weight, int size, double sparsity, Random random)
    {
        int grid = size / Block;
        var pointers = new int[grid + 1];
        var columns = new List<ushort>();
        var values = new List<float>();
        var masked = new float[weight.Length];
        for (int br = 0; br < grid; br++)
        {
            for (int bc = 0; bc < grid; bc++)
            {
                if (random.NextDouble() < sparsity)
                {
                    continue;
                }

                columns.Add((ushort)bc);
                for (int i = 0; i < Block; i++)
                {
                    for (int j = 0; j < Block; j++)
                    {
                        long at = (long)(br * Block + i) * size + bc * Block + j;
                        values.Add(weight[at]);
                        masked[at] = weight[at];
                    }
                }
            }

            pointers[br + 1] = columns.Count;
        }

        return (pointers, columns.ToArray(), values.ToArray(), masked);
    }

    private static int Check(string name, MemoryBuffer1D<float, Stride1D.Dense> reference, MemoryBuffer1D<float, Stride1D.Dense> actual,
        float[] x, float[] w, int batch, int size)
    {
        float[] expected = reference.GetAsArray1D(), got = actual.GetAsArray1D();
        for (int b = 0; b < batch; b++)
        {
            for (int r = 0; r < size; r += 97)             // a sample of rows: the scale Σ|w·x| costs a row each
            {
                double scale = 0;
                for (int c = 0; c < size; c++)
                {
                    scale += Math.Abs((double)w[(long)r * size + c] * x[(long)b * size + c]);
                }

                long at = (long)b * size + r;
                if (Math.Abs(expected[at] - got[at]) > 1e-4 * scale + 1e-30)
                {
                    Console.WriteLine($"  {name} MISMATCH at batch {b}, row {r}: {got[at]:R} vs dense {expected[at]:R}");
                    return 1;
                }
            }
        }

        return 0;
    }

    private static double Median(int repetitions, Action run, Accelerator accelerator) =>
        DeviceTimer.Median(accelerator, repetitions, run);
}
