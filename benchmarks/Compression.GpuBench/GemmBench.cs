// The float32 matrix products of GPTQ on the best ILGPU accelerator, beside cuBLAS in the same run (when ILGPU's
// bindings load it) and benchmarks/reference/gemm_torch.py:
//   Compression.GpuBench gemm [repetitions]          (default 10)
// 1. Checks against float64 loops on small odd shapes (relative Frobenius error of the product, < 1e-5): the GPTQ
//    lazy-update kernel GptqDeviceKernels.MultiplySubtract (C −= A·B), every SYRK kernel of GpuHessianAccumulator
//    (M = XᵀX/n), and cuBLAS's SGEMM/SSYRK through the same calls when cuBLAS is loaded.
// 2. Times, on the device (median over batches of back-to-back calls, after warm-up):
//    - MultiplySubtract: the lazy update C[4096×4096] −= A[4096×128]·B[128×4096] and square 4096³ and 8192³ products;
//    - the Hessian update M ← α·M + β·XᵀX, 4096 features from 2048 and 8192 rows, each SYRK kernel;
//    - cuBLAS on the same shapes, same buffers (SGEMM, and for XᵀX both SGEMM of the full matrix and SSYRK).
//    TFLOP/s = 2mnk / time for products; for XᵀX both the full-matrix equivalent 2·n²·rows (what a GEMM of XᵀX does)
//    and the products executed (our kernels: the tiles on and above the diagonal; SSYRK: the triangle).
// cuBLAS: ILGPU.Algorithms 1.5.3 loads libcublas.so.12/.11/.10 only. With CUDA 13 alone, link libcublas.so.12 to
// libcublas.so.13 in a folder on LD_LIBRARY_PATH (see the notes); the first line says what was loaded.
// COMPRESSION_GPUBENCH_SIMULATOR=1 runs the checks and tiny timings on ILGPU's CPU simulator (smoke test).

using System.Diagnostics;
using System.Globalization;
using Compression.Gpu.Calibration;
using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

internal static class GemmBench
{
    private static readonly object s_multiplySubtract = new(), s_multiplySubtractWide = new();

    /// <summary>Our two lazy-update kernels and cuBLAS, as timed and checked here.</summary>
    private enum Product
    {
        /// <summary>GptqDeviceKernels.MultiplySubtract: 64×64 tiles, 4×4 per thread (the kernel before the wide one).</summary>
        Tiles64,

        /// <summary>GptqDeviceKernels.MultiplySubtractWide: 128×128 tiles, 8×8 per thread, pipelined, 16-byte shared reads (GPTQ's default).</summary>
        Wide128,

        /// <summary>cuBLAS SGEMM with β = 1, α = −1.</summary>
        CuBlas,
    }

    public static int Run(string[] args)
    {
        int repetitions = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10;
        bool simulator = Environment.GetEnvironmentVariable("COMPRESSION_GPUBENCH_SIMULATOR") == "1";
        GpuContext gpu;
        if (simulator)
        {
            gpu = GpuContext.CreateCpuSimulator();
        }
        else if (!GpuContext.TryCreateBest(out GpuContext? found, out string reason))
        {
            Console.Error.WriteLine(reason);
            return 2;
        }
        else
        {
            gpu = found!;
        }

        using (gpu)
        {
            CuBlas? blas = gpu.CuBlas.Handle;
            Console.WriteLine($"device: {gpu.Kind} {gpu.DeviceName}; {gpu.CuBlas.Description}; float32 products, median of {repetitions}");
            int failures = 0;

            // 1. Checks.
            foreach (Product product in Products(blas))
            {
                failures += CheckMultiplySubtract(gpu, product, 150, 230, 70);
                failures += CheckMultiplySubtract(gpu, product, 67, 200, 128);
            }

            foreach (SyrkKernel kernel in Enum.GetValues<SyrkKernel>())
            {
                failures += CheckSyrk(gpu, kernel, 300, 257);
            }

            // 2. Timings (tiny shapes on the simulator: a smoke test of the code path, not a measurement).
            int scale = simulator ? 32 : 1;
            var products = new (string Name, int M, int N, int K)[]
            {
                ("lazy-update", 4096 / scale, 4096 / scale, 128 / scale),
                ("square", 4096 / scale, 4096 / scale, 4096 / scale),
                ("square", 8192 / scale, 8192 / scale, 8192 / scale),
            };
            foreach ((string name, int m, int n, int k) in products)
            {
                TimeProduct(gpu, blas, name, m, n, k, simulator ? 1 : repetitions);
            }

            foreach ((int features, int rows) in new[] { (4096 / scale, 2048 / scale), (4096 / scale, 8192 / scale) })
            {
                TimeSyrk(gpu, features, rows, simulator ? 1 : repetitions);
            }

            Console.WriteLine(failures == 0 ? "all checks passed" : $"{failures} checks FAILED");
            return failures == 0 ? 0 : 1;
        }
    }

    /// <summary>C −= A·B (row-major, m × k times k × n) with one of our kernels or cuBLAS.</summary>
    private static void MultiplySubtract(GpuContext gpu, Product product, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int m, int n, int k)
    {
        if (product == Product.CuBlas)
        {
            CuBlas blas = gpu.CuBlas.Handle!;
            // Column-major, the row-major buffers are Aᵀ (k × m), Bᵀ (n × k), Cᵀ (n × m): Cᵀ ← Cᵀ − Bᵀ·Aᵀ.
            blas.Gemm(CuBlasOperation.NonTranspose, CuBlasOperation.NonTranspose, n, m, k, -1f, b, n, a, k, 1f, c, n);
            return;
        }

        bool wide = product == Product.Wide128;
        var kernel = wide
            ? gpu.GetOrLoadKernel(s_multiplySubtractWide, acc =>
                acc.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>, int, ArrayView<float>, int, int, int, int>(GptqDeviceKernels.MultiplySubtractWide))
            : gpu.GetOrLoadKernel(s_multiplySubtract, acc =>
                acc.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>, int, ArrayView<float>, int, int, int, int>(GptqDeviceKernels.MultiplySubtract));
        int tile = wide ? GptqDeviceKernels.WideTile : GptqDeviceKernels.Tile;
        var grid = new Index2D((n + tile - 1) / tile, (m + tile - 1) / tile);
        kernel(new KernelConfig(grid, new Index2D(GptqDeviceKernels.Threads, GptqDeviceKernels.Threads)), a, k, b, n, c, n, m, n, k);
    }

    private static int CheckMultiplySubtract(GpuContext gpu, Product product, int m, int n, int k)
    {
        float[] a = Random(m * k, seed: m + k), b = Random(k * n, seed: n + k), c = Random(m * n, seed: m + n);
        using MemoryBuffer1D<float, Stride1D.Dense> da = gpu.Accelerator.Allocate1D(a), db = gpu.Accelerator.Allocate1D(b), dc = gpu.Accelerator.Allocate1D(c);
        MultiplySubtract(gpu, product, da.View, db.View, dc.View, m, n, k);
        var result = new float[m * n];
        dc.View.CopyToCPU(result);
        double error = 0, norm = 0;
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int s = 0; s < k; s++)
                {
                    sum += (double)a[i * k + s] * b[s * n + j];
                }

                double expected = c[i * n + j] - sum;
                error += (result[i * n + j] - expected) * (result[i * n + j] - expected);
                norm += sum * sum;
            }
        }

        double relative = Math.Sqrt(error / norm);
        bool ok = relative < 1e-5;
        Console.WriteLine($"check {Name(product),-28} C −= A·B {m}×{k}·{k}×{n}: relative error {relative:E2} {(ok ? "ok" : "FAILED")}");
        return ok ? 0 : 1;
    }

    private static int CheckSyrk(GpuContext gpu, SyrkKernel kernel, int columns, int rows)
    {
        float[] x = Random(rows * columns, seed: columns + rows);
        using var accumulator = new GpuHessianAccumulator(gpu, columns) { Kernel = kernel };
        using MemoryBuffer1D<float, Stride1D.Dense> dx = gpu.Accelerator.Allocate1D(x);
        accumulator.Add(dx.View, rows);
        double[] h = accumulator.GetHessian();
        double error = 0, norm = 0;
        for (int i = 0; i < columns; i++)
        {
            for (int j = i; j < columns; j++)
            {
                double sum = 0;
                for (int r = 0; r < rows; r++)
                {
                    sum += (double)x[r * columns + i] * x[r * columns + j];
                }

                double expected = 2 * sum / rows;
                error += (h[i * columns + j] - expected) * (h[i * columns + j] - expected);
                norm += expected * expected;
            }
        }

        double relative = Math.Sqrt(error / norm);
        bool ok = relative < 1e-5;
        string ran = accumulator.EffectiveKernel == kernel ? "" : $" (ran {accumulator.EffectiveKernel}: cuBLAS not loaded)";
        Console.WriteLine($"check syrk {kernel,-17} XᵀX {columns} features, {rows} rows: relative error {relative:E2} {(ok ? "ok" : "FAILED")}{ran}");
        return ok ? 0 : 1;
    }

    private static void TimeProduct(GpuContext gpu, CuBlas? blas, string name, int m, int n, int k, int repetitions)
    {
        Accelerator accelerator = gpu.Accelerator;
        using MemoryBuffer1D<float, Stride1D.Dense> a = accelerator.Allocate1D(Random(m * k, seed: 1));
        using MemoryBuffer1D<float, Stride1D.Dense> b = accelerator.Allocate1D(Random(k * n, seed: 2));
        using MemoryBuffer1D<float, Stride1D.Dense> c = accelerator.Allocate1D<float>((long)m * n);
        c.MemSetToZero();
        double flops = 2.0 * m * n * k;
        string shape = $"{m}x{n}x{k}";
        int batch = flops > 1e11 ? 1 : 5;
        double? cublasMs = null;
        // cuBLAS first, so that each of our lines can say how far it is from it.
        foreach (Product product in Products(blas).Reverse())
        {
            double ms = Median(repetitions, batch, () => MultiplySubtract(gpu, product, a.View, b.View, c.View, m, n, k), accelerator);
            double rate = flops / (ms * 1e-3) / 1e12;
            cublasMs ??= product == Product.CuBlas ? ms : null;
            string note = product == Product.CuBlas ? "same run" : cublasMs is double r ? $"{100 * r / ms:F0}% of cuBLAS" : "cuBLAS not loaded";
            Console.WriteLine($"gemm {name,-12} {shape,-16} {Name(product),-28} {ms,9:F3} ms {rate,6:F1} TFLOP/s  ({note})");
            Console.WriteLine($"RESULT gemm-{name}-{Name(product)}|{shape}|{ms:F4}|{rate:F2}|{note}");
        }
    }

    private static Product[] Products(CuBlas? blas) =>
        blas is null ? [Product.Tiles64, Product.Wide128] : [Product.Tiles64, Product.Wide128, Product.CuBlas];

    private static string Name(Product product) => product switch
    {
        Product.Tiles64 => "multiply-subtract",
        Product.Wide128 => "multiply-subtract-wide",
        _ => "cublas-sgemm",
    };

    private static void TimeSyrk(GpuContext gpu, int features, int rows, int repetitions)
    {
        Accelerator accelerator = gpu.Accelerator;
        using MemoryBuffer1D<float, Stride1D.Dense> x = accelerator.Allocate1D(Random(rows * features, seed: 3));
        double full = 2.0 * features * features * rows;
        string shape = $"{features}x{features}<-{rows}rows";
        double? cublasGemmMs = null;
        foreach (SyrkKernel kernel in new[] { SyrkKernel.CuBlasGemm, SyrkKernel.CuBlasSyrk, SyrkKernel.Pipelined128Quads, SyrkKernel.Pipelined128, SyrkKernel.Tile128, SyrkKernel.Tile64 })
        {
            using var accumulator = new GpuHessianAccumulator(gpu, features) { Kernel = kernel };
            if (accumulator.EffectiveKernel != kernel)
            {
                continue;                   // cuBLAS not loaded
            }

            double ms = Median(repetitions, 3, () => accumulator.Add(x.View, rows), accelerator);
            int tile = kernel == SyrkKernel.Tile64 ? 64 : 128;
            int tiles = (features + tile - 1) / tile;
            double executed = kernel switch
            {
                SyrkKernel.CuBlasGemm => full,
                SyrkKernel.CuBlasSyrk => (double)features * (features + 1) * rows,
                _ => (double)tiles * (tiles + 1) / 2 * tile * tile * 2 * rows,
            };
            double fullRate = full / (ms * 1e-3) / 1e12, executedRate = executed / (ms * 1e-3) / 1e12;
            cublasGemmMs ??= kernel == SyrkKernel.CuBlasGemm ? ms : null;
            string versus = cublasGemmMs is double g && kernel != SyrkKernel.CuBlasGemm ? $", {100 * g / ms:F0}% of cuBLAS SGEMM's full-matrix rate" : "";
            string name = $"syrk-{kernel.ToString().ToLowerInvariant()}";
            Console.WriteLine($"{name,-22} {shape,-24} {ms,9:F3} ms {fullRate,6:F1} TFLOP/s full-matrix equivalent, {executedRate,6:F1} executed{versus}");
            Console.WriteLine($"RESULT {name}|{shape}|{ms:F4}|{fullRate:F2}|full-matrix equivalent; {executedRate:F2} TFLOP/s executed{versus}");
        }
    }

    private static float[] Random(int length, int seed)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return values;
    }

    /// <summary>Median over <paramref name="repetitions"/> batches of <paramref name="batch"/> back-to-back calls, per
    /// call, after two warm-up calls.</summary>
    private static double Median(int repetitions, int batch, Action run, Accelerator accelerator) =>
        DeviceTimer.Median(accelerator, repetitions, run, warmUps: 2, batch: batch);
}
