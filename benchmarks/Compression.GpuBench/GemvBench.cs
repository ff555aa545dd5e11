// Fused dequantize × matrix-vector products on the best ILGPU accelerator (GpuQuantizedMatrixMultiply), for the
// decode-time shapes of a large model's linear layers:
//   Compression.GpuBench gemv [repetitions [rows columns]]      (default 30; shapes 8192×8192, 8192×28672, 28672×8192)
// Every format is first checked against a float64 product of X and the CPU Decompress() on fresh random inputs (relative
// error per output against Σ|x·ŵ|; above 1e-5 fails, exit code 1). Then, for each format × shape × batch 1, 4, 16: the
// median over repetitions of (20 back-to-back launches between two synchronisations) / 20, rotating among enough device
// copies of the weight that they total more than 200 MB (L2 is 60 MB), beside a device-to-device copy measured the same
// way in the same run. Traffic counts bytes actually read (codes, scales, X) and written (Y).
// COMPRESSION_GPUBENCH_SIMULATOR=1 runs on ILGPU's CPU simulator (use a small size: gemv 2 64 512).
// COMPRESSION_GPUBENCH_PTX=<folder> writes the PTX of the batch-1 kernels there (CUDA only).

using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Compression.Gpu.Runtime;
using Compression.Quantization;
using Compression.Quantization.Gpu;
using Compression.Tensors;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;

internal static class GemvBench
{
    private const long RotationBytes = 200L << 20;
    private static int s_launchesPerTiming = 20;

    private static readonly (string Name, RtnOptions Options)[] s_formats =
    [
        ("int4-g128", RtnOptions.W4Group128),
        ("int4-g128-asym", RtnOptions.W4Group128 with { Symmetric = false }),
        ("int8-pc", RtnOptions.W8PerChannel),
        ("fp8-e4m3-pc", RtnOptions.Fp8PerChannel),
        ("mxfp4", RtnOptions.Mxfp4),
        ("nvfp4", RtnOptions.Nvfp4),
    ];

    public static int Run(string[] args)
    {
        int repetitions = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 30;
        (int Rows, int Columns)[] shapes = args.Length > 2
            ? [(int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture))]
            : [(8192, 8192), (8192, 28672), (28672, 8192)];
        bool simulator = Environment.GetEnvironmentVariable("COMPRESSION_GPUBENCH_SIMULATOR") == "1";
        s_launchesPerTiming = simulator ? 1 : 20;       // the simulator only smoke-tests the code path
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
            Accelerator accelerator = gpu.Accelerator;
            Console.WriteLine($"device: {gpu.Kind} {gpu.DeviceName}, {accelerator.MemorySize / (1 << 30)} GiB; median of {repetitions} × ({s_launchesPerTiming} launches / {s_launchesPerTiming})");
            WritePtx(gpu);

            // 1. Correctness on fresh inputs: a shape with partial tiles and a zero row, batches 1, 3 and 16.
            int failures = 0;
            (int checkRows, int checkColumns) = simulator ? (21, 288) : (301, 4160);
            foreach ((string name, RtnOptions options) in s_formats)
            {
                int seed = Environment.TickCount;
                QuantizedTensor weight = options.CreateCompressor().Quantize(RandomWeight(checkRows, checkColumns, seed));
                using var layer = new GpuQuantizedMatrixMultiply(gpu, weight);
                float[] w = weight.Decompress().Span.ToArray();
                foreach (int batch in new[] { 1, 3, 16 })
                {
                    float[] x = RandomVector(batch * checkColumns, seed + batch);
                    var y = new float[batch * checkRows];
                    Array.Fill(y, float.NaN);
                    layer.Multiply(x, batch, y);
                    double error = MaxRelativeError(w, x, y, batch, checkRows, checkColumns);
                    bool ok = error <= 1e-5;
                    failures += ok ? 0 : 1;
                    Console.WriteLine($"check {name,-12} {checkRows}×{checkColumns} b{batch,-2} max |y − ref| / Σ|x·w| = {error:E2} {(ok ? "ok" : "MISMATCH")}");
                }
            }

            // 2. The ceiling: device-to-device copies rotating over buffers that total more than L2 many times over.
            long copyFloats = simulator ? 1L << 16 : 64L << 20;
            int copyPairs = simulator ? 2 : 4;
            var sources = new List<MemoryBuffer1D<float, Stride1D.Dense>>();
            var targets = new List<MemoryBuffer1D<float, Stride1D.Dense>>();
            for (int i = 0; i < copyPairs; i++)
            {
                sources.Add(accelerator.Allocate1D<float>(copyFloats));
                targets.Add(accelerator.Allocate1D<float>(copyFloats));
                sources[i].MemSetToZero();
            }

            int copyIndex = 0;
            double copyMs = Median(repetitions, accelerator, () =>
            {
                targets[copyIndex].View.CopyFrom(sources[copyIndex].View);
                copyIndex = (copyIndex + 1) % copyPairs;
            });
            double copyBandwidth = 2.0 * 4 * copyFloats / (copyMs * 1e-3) / 1e9;
            foreach (var buffer in sources.Concat(targets))
            {
                buffer.Dispose();
            }

            Console.WriteLine($"device-to-device copy {4.0 * copyFloats / (1 << 20):F2} MiB ×{copyPairs} rotating: {copyMs:F4} ms, {copyBandwidth:F0} GB/s (read + written)");
            Console.WriteLine($"RESULT copy|{4.0 * copyFloats / (1 << 20):F2}MiB|{copyMs:F4}|{copyBandwidth:F0}|read+written");

            // 3. Timings.
            Console.WriteLine($"{"format",-12} {"shape",-12} {"batch",5} {"time",11} {"traffic",10} {"of copy",8} {"copies",6}");
            foreach ((int rows, int columns) in shapes)
            {
                DenseTensor dense = RandomWeight(rows, columns, rows ^ columns);
                foreach ((string name, RtnOptions options) in s_formats)
                {
                    QuantizedTensor weight = options.CreateCompressor().Quantize(dense);
                    var copies = new List<GpuQuantizedMatrixMultiply> { new(gpu, weight) };
                    int wanted = simulator ? 2 : (int)Math.Max(4, (RotationBytes + copies[0].DeviceBytes - 1) / copies[0].DeviceBytes + 1);
                    while (copies.Count < wanted)
                    {
                        copies.Add(new GpuQuantizedMatrixMultiply(gpu, weight));
                    }

                    using MemoryBuffer1D<float, Stride1D.Dense> x = accelerator.Allocate1D(RandomVector(GpuQuantizedMatrixMultiply.MaxBatch * columns, 5));
                    using MemoryBuffer1D<float, Stride1D.Dense> y = accelerator.Allocate1D<float>((long)GpuQuantizedMatrixMultiply.MaxBatch * rows);
                    foreach (int batch in new[] { 1, 4, 16 })
                    {
                        int next = 0;
                        double ms = Median(repetitions, accelerator, () =>
                        {
                            copies[next].Multiply(x.View.BaseView, batch, y.View.BaseView);
                            next = (next + 1) % copies.Count;
                        });
                        double bytes = copies[0].BytesRead(batch) + copies[0].BytesWritten(batch);
                        double bandwidth = bytes / (ms * 1e-3) / 1e9;
                        double percent = 100 * bandwidth / copyBandwidth;
                        string shape = $"{rows}x{columns}";
                        Console.WriteLine($"{name,-12} {shape,-12} {batch,5} {ms,8:F4} ms {bandwidth,6:F0} GB/s {percent,7:F1}% {copies.Count,6}");
                        Console.WriteLine($"RESULT gemv-{name}|{shape} b{batch}|{ms:F4}|{bandwidth:F0}|{percent:F1}");
                    }

                    foreach (GpuQuantizedMatrixMultiply copy in copies)
                    {
                        copy.Dispose();
                    }
                }
            }

            return failures == 0 ? 0 : 1;
        }
    }

    /// <summary>Median over repetitions of the time of <see cref="s_launchesPerTiming"/> back-to-back runs, divided by it.</summary>
    private static double Median(int repetitions, Accelerator accelerator, Action run) =>
        DeviceTimer.Median(accelerator, repetitions, run, warmUps: Math.Min(3, s_launchesPerTiming), batch: s_launchesPerTiming);

    /// <summary>max over outputs of |y − Σ x·ŵ| / Σ|x·ŵ| (float64 reference from the CPU decompression).</summary>
    private static double MaxRelativeError(float[] w, float[] x, float[] y, int batch, int rows, int columns)
    {
        double worst = 0;
        for (int b = 0; b < batch; b++)
        {
            for (int r = 0; r < rows; r++)
            {
                double sum = 0, magnitude = 0;
                for (int c = 0; c < columns; c++)
                {
                    double term = (double)x[b * columns + c] * w[(long)r * columns + c];
                    sum += term;
                    magnitude += Math.Abs(term);
                }

                double actual = y[b * rows + r];
                double error = magnitude == 0 ? (actual == 0 ? 0 : double.PositiveInfinity) : Math.Abs(actual - sum) / magnitude;
                worst = double.IsNaN(actual) ? double.PositiveInfinity : Math.Max(worst, error);
            }
        }

        return worst;
    }

    /// <summary>Gaussian weights (σ 0.02) with every 997th ×30 and a zero row; rows filled in parallel from per-row seeds.</summary>
    private static DenseTensor RandomWeight(int rows, int columns, int seed)
    {
        var values = new float[(long)rows * columns];
        Parallel.For(0, rows, r =>
        {
            var random = new Random(HashCode.Combine(seed, r));
            Span<float> row = values.AsSpan((int)((long)r * columns), columns);
            for (int c = 0; c < columns; c++)
            {
                double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
                row[c] = (float)(0.02 * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
                if ((c + r) % 997 == 0)
                {
                    row[c] *= 30;
                }
            }
        });
        var tensor = new DenseTensor(values, rows, columns);
        tensor.Row(rows / 2).Clear();
        return tensor;
    }

    private static float[] RandomVector(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)(2 * random.NextDouble() - 1);
        }

        return values;
    }

    /// <summary>The PTX of the batch-1 kernels, for inspection (COMPRESSION_GPUBENCH_PTX=folder, CUDA only).</summary>
    private static void WritePtx(GpuContext gpu)
    {
        string? folder = Environment.GetEnvironmentVariable("COMPRESSION_GPUBENCH_PTX");
        if (folder is null || gpu.Kind != GpuDeviceKind.Cuda)
        {
            return;
        }

        Directory.CreateDirectory(folder);
        Assembly assembly = typeof(RtnOptions).Assembly;
        Type kernels = assembly.GetType("Compression.Quantization.Gpu.QuantizedGemvKernels", throwOnError: true)!;
        MethodInfo multiply = kernels.GetMethod("Multiply", BindingFlags.Public | BindingFlags.Static)!;
        Type Nested(string name) => kernels.GetNestedType(name, BindingFlags.NonPublic | BindingFlags.Public)!;
        foreach ((string codes, string scales) in new[] { ("Int4Codes", "FloatQuadScales"), ("Int8Codes", "RowScale"), ("Fp8Codes", "RowScale"),
                     ("Fp4Codes", "E8M0QuadScales"), ("Fp4Codes", "E4M3QuadScales") })
        {
            MethodInfo method = multiply.MakeGenericMethod(Nested(codes), Nested(scales), Nested("Width1"));
            var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
            string ptx = ((PTXCompiledKernel)gpu.Accelerator.GetBackend().Compile(entry, default)).PTXAssembly;
            File.WriteAllText(Path.Combine(folder, $"gemv-{codes}-{scales}.ptx"), ptx);
        }

        Console.WriteLine($"PTX of the batch-1 kernels written to {folder}");
    }
}
