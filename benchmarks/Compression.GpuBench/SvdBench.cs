// The randomized SVD on the best ILGPU accelerator (Compression.LowRank.Gpu.GpuRandomizedSvd), beside
// benchmarks/reference/svd_torch.py on the same matrix and GPU:
//   Compression.GpuBench svd [folder [size [rank [repetitions]]]]          (defaults: svd-inputs 4096 256 5)
// 1. Checks: the panel-product kernel (both modes, sketch = rank + 10 rows) against a float64 loop on a
//    min(size, 1024)² matrix, to the rounding bound γ_L·Σ|p|·|a|; then the device SVD against the CPU one
//    (SingularValueDecomposition.Randomized, same seed ⇒ same Ω) on that matrix.
// 2. Writes the size² float32 matrix (a decaying spectrum plus noise, like a trained weight) to
//    <folder>/svd-<size>.safetensors (tensor "matrix"), for the reference script.
// 3. Times the device SVD of it to the given rank (oversampling 10, 2 power iterations: torch.svd_lowrank's q = rank + 10,
//    niter = 2), the matrix resident on the device: median of synchronised runs after two warm-ups. For the ceiling,
//    the panel-product kernel alone (median of 20, TFLOP/s = 2·k·m·n / time), the device orthonormalisation of one
//    panel (shifted CholeskyQR3) and the SVD of the small factor (device Jacobi; the host's, for comparison): one SVD
//    is 2 + 2q products, 3 + 2q orthonormalisations and one small SVD. The CPU route is timed once.
// COMPRESSION_GPUBENCH_SIMULATOR=1 runs everything on ILGPU's CPU simulator (smoke test; use a small size).

using System.Diagnostics;
using System.Globalization;
using Compression.Gpu.Runtime;
using Compression.LowRank;
using Compression.LowRank.Gpu;
using Compression.Numerics;
using Compression.Safetensors;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

internal static class SvdBench
{
    private const int Oversampling = 10;
    private const int PowerIterations = 2;

    public static int Run(string[] args)
    {
        string folder = args.Length > 0 ? args[0] : "svd-inputs";
        int size = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 4096;
        int rank = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 256;
        int repetitions = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 5;
        GpuContext gpu;
        if (Environment.GetEnvironmentVariable("COMPRESSION_GPUBENCH_SIMULATOR") == "1")
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
            Accelerator accelerator = gpu.Accelerator;
            var options = new RandomizedSvdOptions { Oversampling = Oversampling, PowerIterations = PowerIterations, Seed = 0 };
            Console.WriteLine($"device: {gpu.Kind} {gpu.DeviceName}; randomized SVD of {size}×{size} float32 to rank {rank} " +
                              $"(sketch {rank + Oversampling}, {PowerIterations} power iterations); median of {repetitions}");
            int failures = 0;

            // 1. Checks on a smaller matrix (the float64 loops and the CPU SVD take seconds there, minutes at 4096).
            int checkSize = Math.Min(size, 1024), checkRank = Math.Min(rank, checkSize / 2);
            DenseTensor check = Matrix(checkSize, checkSize, seed: 1);
            failures += CheckKernel(gpu, check, Math.Min(checkRank + Oversampling, checkSize));
            failures += CheckSvd(gpu, check, checkRank, options);

            // 2. The timed matrix, on disk for the reference.
            DenseTensor a = Matrix(size, size, seed: 2);
            Directory.CreateDirectory(folder);
            string path = Path.Combine(folder, $"svd-{size}.safetensors");
            var writer = new SafetensorsWriter();
            writer.Add("matrix", a);
            writer.Save(path);
            Console.WriteLine($"wrote {path}");

            // 3. Timings, the matrix resident on the device.
            using MemoryBuffer1D<float, Stride1D.Dense> device = accelerator.Allocate1D(a.Span.ToArray());
            var svd = new GpuRandomizedSvd(gpu, options);
            SingularValueDecomposition? result = null;
            double svdMs = Median(repetitions, warmUps: 2, () => result = svd.Decompose(device.View.BaseView, size, size, rank), accelerator);
            double error = RelativeError(a, result!);
            Console.WriteLine($"gpu randomized svd {size}×{size} rank {rank}: {svdMs,9:F1} ms; σ₁ = {result!.SingularValues[0]:G6}, " +
                              $"σ_{rank} = {result.SingularValues[rank - 1]:G6}, ‖A − Â‖_F/‖A‖_F = {error:G6}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RESULT svd-randomized|{size}x{size} r{rank}|{svdMs:F3}||error {error:G6}"));

            int sketch = Math.Min(rank + Oversampling, size);
            float[] panelHost = RandomValues(sketch * size, seed: 3);
            using MemoryBuffer1D<float, Stride1D.Dense> panel = accelerator.Allocate1D(panelHost);
            using MemoryBuffer1D<float, Stride1D.Dense> product = accelerator.Allocate1D<float>((long)sketch * size);
            double flops = GpuPanelProducts.Flops(sketch, size, size);
            int products = 2 + 2 * PowerIterations;
            double totalProductsMs = 0;
            foreach (bool transpose in new[] { true, false })
            {
                double ms = Median(20, warmUps: 3, () => GpuPanelProducts.Multiply(gpu, panel.View.BaseView, device.View.BaseView, product.View.BaseView,
                    sketch, size, size, transpose), accelerator);
                totalProductsMs += ms * products / 2;
                Console.WriteLine($"panel product {(transpose ? "P·Aᵀ (A·Ω)" : "P·A (Qᵀ·A)"),-12} k = {sketch}: {ms,8:F3} ms, {flops / (ms * 1e-3) / 1e12,6:F2} TFLOP/s");
            }

            // The device orthonormalisation (shifted CholeskyQR3) of one panel, and the SVD of the small factor.
            using var orthonormalizer = new GpuOrthonormalizer(gpu, sketch, size);
            double qrMs = Median(10, warmUps: 2, () =>
            {
                panel.View.BaseView.CopyFromCPU(panelHost);
                orthonormalizer.Orthonormalise(panel.View.BaseView, size, CancellationToken.None);
            }, accelerator);
            double[] smallMatrix = Array.ConvertAll(RandomValues(sketch * sketch, seed: 5), v => (double)v);
            double smallSvdMs = Median(5, warmUps: 1, () => GpuJacobiSvd.TryDecompose(gpu, smallMatrix, sketch, out _, CancellationToken.None), accelerator);
            double hostSvdMs = Median(3, warmUps: 1, () => SingularValueDecomposition.DenseSvd(smallMatrix, sketch, sketch), accelerator);
            Console.WriteLine($"device orthonormalisation of one {sketch}×{size} panel: {qrMs,8:F2} ms (with its upload); SVD of the " +
                              $"{sketch}×{sketch} factor: device Jacobi {smallSvdMs,8:F1} ms, host (MathNet) {hostSvdMs,8:F1} ms");
            Console.WriteLine($"one SVD ≈ {products} products ({totalProductsMs:F1} ms) + {products + 1} orthonormalisations (≈ {(products + 1) * qrMs:F1} ms) " +
                              $"+ the small SVD ({smallSvdMs:F1} ms) + transfers ({Math.Max(0, svdMs - totalProductsMs - (products + 1) * qrMs - smallSvdMs):F1} ms left of {svdMs:F1} ms)");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RESULT svd-orthonormalise|{sketch}x{size}|{qrMs:F3}||device shifted CholeskyQR3"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RESULT svd-small-jacobi|{sketch}x{sketch}|{smallSvdMs:F3}||device one-sided Jacobi, float64"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RESULT svd-small-host-svd|{sketch}x{sketch}|{hostSvdMs:F3}||MathNet float64 on the host (not used)"));

            var clock = Stopwatch.StartNew();
            SingularValueDecomposition cpu = SingularValueDecomposition.Randomized(a, rank, options);
            Console.WriteLine($"cpu randomized svd {size}×{size} rank {rank} ({Environment.ProcessorCount} cores, one run): {clock.Elapsed.TotalMilliseconds,9:F0} ms; " +
                              $"σ₁ = {cpu.SingularValues[0]:G6}, ‖A − Â‖_F/‖A‖_F = {RelativeError(a, cpu):G6}");
            Console.WriteLine($"reference: python3 benchmarks/reference/svd_torch.py {path} {rank} {repetitions}");
            return failures == 0 ? 0 : 1;
        }
    }

    /// <summary>Both kernel modes against a float64 loop: every entry within γ_L·Σ|p|·|a| (float32 accumulation).</summary>
    private static int CheckKernel(GpuContext gpu, DenseTensor a, int k)
    {
        int n = a.Rows;
        float[] matrix = a.Span.ToArray(), panel = RandomValues(k * n, seed: 4);
        using MemoryBuffer1D<float, Stride1D.Dense> da = gpu.Accelerator.Allocate1D(matrix);
        using MemoryBuffer1D<float, Stride1D.Dense> dp = gpu.Accelerator.Allocate1D(panel);
        using MemoryBuffer1D<float, Stride1D.Dense> dc = gpu.Accelerator.Allocate1D(Enumerable.Repeat(float.NaN, k * n).ToArray());
        double unit = Math.ScaleB(1.0, -24), gamma = n * unit / (1 - n * unit);
        int failures = 0;
        foreach (bool transpose in new[] { true, false })
        {
            GpuPanelProducts.Multiply(gpu, dp.View.BaseView, da.View.BaseView, dc.View.BaseView, k, n, n, transpose);
            float[] c = new float[k * n];
            dc.View.BaseView.CopyToCPU(c);
            double[] worst = new double[k];
            Parallel.For(0, k, s =>
            {
                for (int j = 0; j < n; j++)
                {
                    double sum = 0, magnitude = 0;
                    for (int r = 0; r < n; r++)
                    {
                        double term = (double)panel[s * n + r] * (transpose ? matrix[j * n + r] : matrix[r * n + j]);
                        sum += term;
                        magnitude += Math.Abs(term);
                    }

                    double ratio = Math.Abs(c[s * n + j] - sum) / (gamma * magnitude);
                    worst[s] = double.IsNaN(ratio) ? double.PositiveInfinity : Math.Max(worst[s], ratio);
                }
            });
            double ratioMax = worst.Max();
            bool ok = ratioMax <= 1;
            failures += ok ? 0 : 1;
            Console.WriteLine($"check panel product {(transpose ? "P·Aᵀ" : "P·A ")} {k}×{n}·{n}×{n}: {(ok ? "ok" : "MISMATCH")}, worst error {ratioMax:F4} of the float32 bound γ_L·Σ|p||a|");
        }

        return failures;
    }

    /// <summary>The device SVD against the CPU one with the same seed (same Ω).</summary>
    private static int CheckSvd(GpuContext gpu, DenseTensor a, int rank, RandomizedSvdOptions options)
    {
        SingularValueDecomposition cpu = SingularValueDecomposition.Randomized(a, rank, options);
        SingularValueDecomposition device = new GpuRandomizedSvd(gpu, options).Decompose(a, rank);
        double scale = cpu.SingularValues[0];
        double worstValue = Enumerable.Range(0, rank).Max(j => Math.Abs(device.SingularValues[j] - cpu.SingularValues[j])) / scale;
        double[] cpuA = cpu.Reconstruct(), deviceA = device.Reconstruct();
        double norm = Math.Sqrt(a.Span.ToArray().Sum(v => (double)v * v));
        double between = Math.Sqrt(cpuA.Zip(deviceA).Sum(p => (p.First - p.Second) * (p.First - p.Second))) / norm;
        double cpuError = RelativeError(a, cpu), deviceError = RelativeError(a, device);
        // Float32 products over L = 1024 terms: typically √L·2⁻²⁴ ≈ 2e-6 relative, at most γ_L ≈ 6e-5 of Σ|p||a|;
        // 1e-4 of σ₁ and of ‖A‖_F bounds both with room, and an indexing error would move them by O(1).
        bool ok = worstValue <= 1e-4 && between <= 1e-4 && Math.Abs(cpuError - deviceError) <= 1e-4;
        Console.WriteLine($"check gpu svd vs cpu svd {a.Rows}×{a.Columns} rank {rank}: {(ok ? "ok" : "MISMATCH")}, max |Δσ|/σ₁ = {worstValue:E2}, " +
                          $"‖Â_gpu − Â_cpu‖/‖A‖ = {between:E2}, errors ‖A − Â‖/‖A‖ gpu {deviceError:G6} cpu {cpuError:G6}");
        return ok ? 0 : 1;
    }

    /// <summary>
    /// A = X·diag(σ)·Y/√n + 0.01·G with σ_j = (1 + j)^(−0.7) over the first n/4 directions (X, Y, G Gaussian): a
    /// slowly decaying head over a flat noise floor, as the spectra of trained weights look.
    /// </summary>
    private static DenseTensor Matrix(int rows, int columns, int seed)
    {
        int r = Math.Max(1, Math.Min(rows, columns) / 4);
        float[] x = RandomValues(rows * r, seed), y = RandomValues(r * columns, seed + 1), noise = RandomValues(rows * columns, seed + 2);
        for (int t = 0; t < r; t++)
        {
            float weight = (float)(Math.Pow(1 + t, -0.7) / Math.Sqrt(columns));
            for (int i = 0; i < rows; i++)
            {
                x[i * r + t] *= weight;
            }
        }

        var a = new DenseTensor(rows, columns);
        Gemm.Multiply(x, y, a.Span, rows, columns, r);
        Span<float> values = a.Span;
        for (int i = 0; i < values.Length; i++)
        {
            values[i] += 0.01f * noise[i] / MathF.Sqrt(columns);
        }

        return a;
    }

    private static double RelativeError(DenseTensor a, SingularValueDecomposition svd)
    {
        double[] approximation = svd.Reconstruct();
        ReadOnlySpan<float> values = a.Span;
        double residual = 0, norm = 0;
        for (int i = 0; i < values.Length; i++)
        {
            double d = values[i] - approximation[i];
            residual += d * d;
            norm += (double)values[i] * values[i];
        }

        return Math.Sqrt(residual / norm);
    }

    private static float[] RandomValues(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            values[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return values;
    }

    private static double Median(int repetitions, int warmUps, Action run, Accelerator accelerator) =>
        DeviceTimer.Median(accelerator, repetitions, run, warmUps);
}
