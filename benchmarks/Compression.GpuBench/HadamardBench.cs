// The block-wise Hadamard rotation of MR-GPTQ (GpuHadamard) on the best ILGPU accelerator, beside
// benchmarks/reference/hadamard_torch.py:
//   Compression.GpuBench hadamard [size [repetitions]]          (defaults: 8192 20)
// 1. Checks, bit for bit against the CPU rotation (HadamardRotation.RotateWeight) on fresh random weights: every
//    timed configuration through each kernel path (the register kernel and the shared-memory one it replaced), on a
//    77 × 8192 weight (77 rows: not a multiple of the four rows a warp of the register kernel takes).
// 2. Times each configuration in place on a size × size float32 weight (one read and one write of it per rotation;
//    at 8192 the weight is 268 MB, over four times the 60 MB L2, so no run finds it cached), as the median over
//    batches of 10 back-to-back rotations (launch overhead amortised), beside a device-to-device copy of the same
//    weight timed the same way in the same run: the bandwidth ceiling.
// Prints RESULT hadamard-<block>[-signed]|<size>x<size>|<ms>|<GB/s>|<% of copy> for the kernels the library runs,
// and RESULT hadamard-shared-... for the shared-memory kernel on blocks the register kernel now takes.
// COMPRESSION_GPUBENCH_SIMULATOR=1 runs on ILGPU's CPU simulator (smoke test; use a small size such as 256 2).

using System.Diagnostics;
using System.Globalization;
using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

internal static class HadamardBench
{
    /// <summary>Back-to-back runs per timed batch (1 on the simulator, where one run takes seconds).</summary>
    private static int s_batch = 10;

    private static readonly (int Block, long? Seed)[] s_configurations =
    [
        (16, null), (16, 7L), (32, null), (32, 7L), (64, null), (64, 7L), (128, null), (128, 7L), (1024, 7L), (4096, null), (4096, 11L),
    ];

    public static int Run(string[] args)
    {
        int size = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 8192;
        int repetitions = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20;
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
            s_batch = gpu.Kind == GpuDeviceKind.Cuda ? 10 : 1;
            Console.WriteLine($"device: {gpu.Kind} {gpu.DeviceName}; Hadamard rotation in place on {size}×{size} float32; " +
                              $"median of {repetitions} batches of {s_batch}");

            // 1. Checks.
            int failures = 0;
            // 77 rows: not a multiple of the four a warp of the register kernel takes; 5 on the slow simulator.
            int checkRows = gpu.Kind == GpuDeviceKind.Cuda ? 77 : 5;
            int checkColumns = Math.Max(size, 4096) / 4096 * 4096;
            foreach ((int block, long? seed) in s_configurations)
            foreach (GpuHadamard.Path path in Paths(block))
            {
                var rotation = new HadamardRotation(block, seed);
                DenseTensor sample = RandomWeight(checkRows, checkColumns, seed: Environment.TickCount ^ block);
                float[] cpu = rotation.RotateWeight(sample).Span.ToArray();
                using MemoryBuffer1D<float, Stride1D.Dense> buffer = accelerator.Allocate1D<float>(sample.Length);
                buffer.View.BaseView.CopyFromCPU(sample.Span);
                GpuHadamard.Rotate(gpu, buffer.View.BaseView, checkRows, checkColumns, rotation, path);
                var device = new float[sample.Length];
                buffer.View.BaseView.CopyToCPU(device);
                int mismatches = 0;
                for (int i = 0; i < cpu.Length; i++)
                {
                    mismatches += BitConverter.SingleToInt32Bits(cpu[i]) == BitConverter.SingleToInt32Bits(device[i]) ? 0 : 1;
                }

                failures += mismatches == 0 ? 0 : 1;
                Console.WriteLine($"check {Name(block, seed, path),-26} {checkRows}×{checkColumns} {(mismatches == 0 ? "bit-exact" : $"MISMATCH: {mismatches} elements")}");
            }

            // 2. Timings.
            DenseTensor weight = RandomWeight(size, size, seed: 7);
            long elements = (long)size * size;
            double bytes = 2.0 * 4 * elements;
            using MemoryBuffer1D<float, Stride1D.Dense> data = accelerator.Allocate1D<float>(elements);
            using MemoryBuffer1D<float, Stride1D.Dense> copy = accelerator.Allocate1D<float>(elements);
            data.View.BaseView.CopyFromCPU(weight.Span);
            double copyMs = Median(repetitions, () => copy.View.CopyFrom(data.View), accelerator);
            double copyBandwidth = bytes / (copyMs * 1e-3) / 1e9;
            string shape = $"{size}x{size}";
            Console.WriteLine($"{"device-to-device copy",-26} {copyMs,8:F4} ms {copyBandwidth,7:F0} GB/s (read + written)");
            Console.WriteLine($"RESULT copy|{shape}|{copyMs:F4}|{copyBandwidth:F0}|ceiling");
            foreach ((int block, long? seed) in s_configurations.Where(c => size % c.Block == 0))
            foreach (GpuHadamard.Path path in Paths(block))
            {
                var rotation = new HadamardRotation(block, seed);
                double ms = Median(repetitions, () => GpuHadamard.Rotate(gpu, data.View.BaseView, size, size, rotation, path), accelerator);
                double bandwidth = bytes / (ms * 1e-3) / 1e9;
                double percent = 100 * bandwidth / copyBandwidth;
                string name = Name(block, seed, path);
                Console.WriteLine($"{name,-26} {ms,8:F4} ms {bandwidth,7:F0} GB/s {percent,6:F1}% of copy");
                Console.WriteLine($"RESULT {name}|{shape}|{ms:F4}|{bandwidth:F0}|{percent:F1}% of copy");
            }

            Console.WriteLine(failures == 0 ? "all checks bit-exact" : $"{failures} checks FAILED");
            return failures == 0 ? 0 : 1;
        }
    }

    /// <summary>The library's path, and the shared-memory kernel too where the register kernel took its place.</summary>
    private static GpuHadamard.Path[] Paths(int block) =>
        block <= 128 ? [GpuHadamard.Path.Fastest, GpuHadamard.Path.SharedMemory] : [GpuHadamard.Path.Fastest];

    private static string Name(int block, long? seed, GpuHadamard.Path path) =>
        $"hadamard-{(path == GpuHadamard.Path.SharedMemory ? "shared-" : "")}{block}{(seed is null ? "" : "-signed")}";

    private static DenseTensor RandomWeight(int rows, int columns, int seed)
    {
        var random = new Random(seed);
        var values = new float[(long)rows * columns];
        for (int i = 0; i < values.Length; i++)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            values[i] = (float)(0.02 * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            if (i % 997 == 0)
            {
                values[i] *= 30;
            }
        }

        return new DenseTensor(values, rows, columns);
    }

    /// <summary>Median over <paramref name="repetitions"/> batches of <see cref="s_batch"/> back-to-back runs, per run,
    /// after three warm-up runs.</summary>
    private static double Median(int repetitions, Action run, Accelerator accelerator) =>
        DeviceTimer.Median(accelerator, repetitions, run, warmUps: Math.Min(3, s_batch), batch: s_batch);
}
