// GPTQ on the issue's layer sizes (INT4 on the reference's 16-level grid, groups of 128, act-order, damp 0.01, block
// 128), beside benchmarks/reference/gptq_reference.py, on the CPU and on the best accelerator:
//   Compression.GpuBench gptq [folder [seed [sizes [cpu|gpu|both]]]]      (sizes: e.g. 1024,4096)
// It draws each layer's inputs (random W; X = Z·A with every 64th channel ×20), writes them to
// <folder>/gptq-<cols>-<seed>.safetensors ("weight", "inputs", float32) so the reference runs on the same numbers:
//   python3 benchmarks/reference/gptq_reference.py <gptq checkout> cpu|cuda <folder>/gptq-*.safetensors
// and prints, per device: seconds for the Hessian (512-row batches) and for GPTQ (with its phases), the sum of the
// per-column losses on the reference's scale (it counts a 2-D batch as one sample: ×512) and the layer objective.

using System.Diagnostics;
using System.Globalization;
using Compression;
using Compression.Calibration;
using Compression.Gpu.Calibration;
using Compression.Gpu.Runtime;
using Compression.Numerics;
using Compression.Quantization;
using Compression.Quantization.Gpu;
using Compression.Safetensors;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

internal static class GptqLayers
{
    private const int BatchRows = 512;
    private const int HessianRuns = 21;

    public static int Run(string[] args)
    {
        string? folder = args.Length > 0 ? args[0] : null;
        int seed = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 0;
        int[] sizes = args.Length > 2 ? Array.ConvertAll(args[2].Split(','), s => int.Parse(s, CultureInfo.InvariantCulture)) : [1024, 4096];
        string devices = args.Length > 3 ? args[3] : "both";
        GpuContext? gpu = null;
        if (devices != "cpu" && !GpuContext.TryCreateBest(out gpu, out string reason))
        {
            Console.Error.WriteLine(reason);
            return 2;
        }

        using (gpu)
        {
            if (gpu is not null)
            {
                Console.WriteLine($"accelerator: {gpu.DeviceName} ({gpu.Kind})");
            }

            // The reference's symmetric INT4 grid: 16 levels, scale = 2·amax/15, zero point 8 (our "full" symmetric range).
            var options = new GptqOptions { Quantization = RtnOptions.W4Group128 with { SymmetricRange = SymmetricRange.Full }, ActOrder = true };
            foreach ((int cols, int n) in new[] { (1024, 4096), (4096, 2048) }.Where(c => sizes.Contains(c.Item1)))
            {
                (DenseTensor w, DenseTensor x) = Inputs(cols, n, seed);
                if (folder is not null)
                {
                    Directory.CreateDirectory(folder);
                    var writer = new SafetensorsWriter();
                    writer.Add("weight", w);
                    writer.Add("inputs", x);
                    writer.Save(Path.Combine(folder, $"gptq-{cols}-{seed}.safetensors"));
                }

                if (devices != "gpu")
                {
                    var clock = Stopwatch.StartNew();
                    var hessian = new HessianAccumulator(cols, new HessianAccumulatorOptions { Precision = AccumulationPrecision.Single });
                    for (int r = 0; r < n; r += BatchRows)
                    {
                        hessian.Add(DenseTensor.FromValues(x.Span.Slice(r * cols, BatchRows * cols), BatchRows, cols));
                    }

                    double hessianSeconds = clock.Elapsed.TotalSeconds;
                    clock.Restart();
                    GptqTensor q = new GptqQuantizer(options).Quantize(w, new CompressionContext { InputHessian = hessian });
                    Print("cpu", cols, n, hessianSeconds, clock.Elapsed.TotalSeconds, q.Report!);
                }

                if (gpu is not null)
                {
                    // As the reference times it: the inputs already on the device, the first run (kernel compilation)
                    // not counted.
                    var quantizer = new GpuGptqQuantizer(gpu, options);
                    using MemoryBuffer1D<float, Stride1D.Dense> device = gpu.Accelerator.Allocate1D(x.Span.ToArray());
                    for (int run = 0; run < 2; run++)
                    {
                        if (run == 1)
                        {
                            // Each SYRK kernel on its own, for the record (the accumulator picks one by width).
                            (SyrkKernel Kernel, int? Splits)[] variants =
                                [(SyrkKernel.Tile64, null), (SyrkKernel.Tile128, null), (SyrkKernel.Pipelined128, 1), (SyrkKernel.Pipelined128, null)];
                            Console.WriteLine(string.Join(", ", variants.Select(v =>
                            {
                                (double seconds, GpuHessianAccumulator h) = TimeHessian(gpu, device, cols, n, v.Kernel, v.Splits);
                                h.Dispose();
                                return string.Create(CultureInfo.InvariantCulture, $"{v.Kernel}/{v.Splits?.ToString(CultureInfo.InvariantCulture) ?? "auto"} {seconds * 1e3:F3} ms");
                            })));
                        }

                        (double hessianSeconds, GpuHessianAccumulator hessian) = TimeHessian(gpu, device, cols, n, kernel: null, splits: null);
                        using GpuHessianAccumulator accumulated = hessian;
                        var clock = Stopwatch.StartNew();
                        GptqTensor q = quantizer.Quantize(w, accumulated);
                        if (run == 1)
                        {
                            Print("gpu", cols, n, hessianSeconds, clock.Elapsed.TotalSeconds, q.Report!);
                        }
                    }
                }
            }
        }

        return 0;
    }

    // The Hessian takes a few milliseconds: the median of HessianRuns accumulations (the last one is returned), each
    // synchronised, so launch jitter does not decide the comparison.
    private static (double Seconds, GpuHessianAccumulator Hessian) TimeHessian(
        GpuContext gpu, MemoryBuffer1D<float, Stride1D.Dense> device, int cols, int n, SyrkKernel? kernel, int? splits)
    {
        var times = new double[HessianRuns];
        GpuHessianAccumulator? hessian = null;
        for (int h = 0; h < HessianRuns; h++)
        {
            hessian?.Dispose();
            var tick = Stopwatch.StartNew();
            hessian = new GpuHessianAccumulator(gpu, cols) { Kernel = kernel, Splits = splits };
            for (int r = 0; r < n; r += BatchRows)
            {
                hessian.Add(device.View.BaseView.SubView((long)r * cols, (long)BatchRows * cols), BatchRows);
            }

            gpu.Accelerator.Synchronize();
            times[h] = tick.Elapsed.TotalSeconds;
        }

        Array.Sort(times);
        return (times[HessianRuns / 2], hessian!);
    }

    private static void Print(string device, int cols, int n, double hessianSeconds, double quantizeSeconds, GptqReport report)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{device} {cols}x{cols}, {n} rows: hessian {hessianSeconds * 1e3:F3} ms, quantize {quantizeSeconds:F3} s " +
            $"(factorize {report.FactorizationTime.TotalSeconds:F3}, sweep {report.SweepTime.TotalSeconds:F3}, objective {report.ObjectiveTime.TotalSeconds:F3}), " +
            $"error (sum of losses, reference scale) {report.TotalLoss * BatchRows:F1}, objective {report.Objective:F3}"));
        string where = device.StartsWith("cpu", StringComparison.OrdinalIgnoreCase) ? "cpu" : "gpu";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT gptq-{where}-hessian|{cols}x{cols} n{n}|{hessianSeconds * 1e3:F3}||"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT gptq-{where}-quantize|{cols}x{cols} n{n}|{quantizeSeconds * 1e3:F1}||objective {report.Objective:G6}"));
    }

    /// <summary>Random weight; correlated inputs X = Z·A (A = I + noise/√cols) with every 64th channel ×20.</summary>
    private static (DenseTensor W, DenseTensor X) Inputs(int cols, int n, int seed)
    {
        var random = new Random(cols + seed);
        float Gauss() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        var w = new DenseTensor(cols, cols);
        for (int i = 0; i < w.Length; i++)
        {
            w.Span[i] = 0.02f * Gauss();
        }

        var z = new DenseTensor(n, cols);
        for (int i = 0; i < z.Length; i++)
        {
            z.Span[i] = Gauss();
        }

        var a = new DenseTensor(cols, cols);
        for (int i = 0; i < a.Length; i++)
        {
            a.Span[i] = Gauss() / MathF.Sqrt(cols) + (i / cols == i % cols ? 1 : 0);
        }

        var x = new DenseTensor(n, cols);
        Gemm.Multiply(z.Span, a.Span, x.Span, n, cols, cols);
        for (int r = 0; r < n; r++)
        {
            for (int c = 0; c < cols; c += 64)
            {
                x[r, c] *= 20;
            }
        }

        return (w, x);
    }
}
