// Quantize + pack and dequantize on the best ILGPU accelerator (QuantizeBench.cs): every scheme checked against the
// CPU quantizer (bit for bit, on a fresh random weight; float32 and BF16 weights, float32 and BF16 outputs), then timed
// on an 8192×8192 weight against a device-to-device copy measured in the same
// run (the bandwidth ceiling). Usage: Compression.GpuBench [size] [repetitions]
// GPTQ layer timing beside the reference implementation: Compression.GpuBench gptq ... (see GptqLayers.cs).
// Randomized SVD beside torch.svd_lowrank and torch.linalg.svd: Compression.GpuBench svd ... (see SvdBench.cs).

using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using System.Globalization;
using Compression.Gpu.Calibration;
using Compression.Gpu.Runtime;
using Compression.Quantization;
using Compression.Quantization.Gpu;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length > 0 && args[0] == "gptq")
{
    return GptqLayers.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "sparse") { return SparseProducts.Run(args[1..]); }
if (args.Length > 0 && args[0] == "hadamard") { return HadamardBench.Run(args[1..]); }
if (args.Length > 0 && args[0] == "gemm") { return GemmBench.Run(args[1..]); }

if (args.Length > 0 && args[0] == "gemv") { return GemvBench.Run(args[1..]); }

if (args.Length > 0 && args[0] == "svd")
{
    return SvdBench.Run(args[1..]);
}

int size = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 8192;
int repetitions = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 50;
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
    Accelerator accelerator = gpu.Accelerator;
    Console.WriteLine($"device: {gpu.Kind} {gpu.DeviceName}, {accelerator.MemorySize / (1 << 30)} GiB; weight {size}×{size} float32; median of {repetitions}");

    var schemes = QuantizeBench.Schemes.Select(s => (s.Name, s.Options)).ToArray();

    // The PTX ILGPU generates for the bandwidth kernels, for inspection (COMPRESSION_GPUBENCH_PTX=<folder>).
    string? ptxFolder = Environment.GetEnvironmentVariable("COMPRESSION_GPUBENCH_PTX");
    if (ptxFolder is not null && gpu.Kind == GpuDeviceKind.Cuda)
    {
        Directory.CreateDirectory(ptxFolder);
        Type Internal(string name) => typeof(RtnOptions).Assembly.GetType("Compression.Quantization.Gpu." + name, throwOnError: true)!;
        // One instantiation per line: the kernels are generic over the input loader / output store and the element coding.
        foreach ((string type, string kernel, string arguments, bool explicitlyGrouped) in new[]
        {
            ("QuadKernels", "RowOctets", "Float32Loader,IntegerSymmetricEncoder", true),
            ("QuadKernels", "RowOctets", "BFloat16Loader,MiniFloatEncoder", true),
            ("QuadKernels", "TensorAbsMax", "Float32Loader", true),
            ("QuadKernels", "TensorAbsMax", "BFloat16Loader", true),
            ("QuadKernels", "GroupSixteens", "Float32Loader,IntegerSymmetricEncoder", false),
            ("QuadKernels", "GroupSixteens", "BFloat16Loader,SharedExponentEncoder", false),
            ("QuadKernels", "GroupSixteens", "Float32Loader,MiniFloatEncoder", false),
            ("DequantizeKernels", "Chunks", "Float32Store,IntegerSymmetricDecoder", true),
            ("DequantizeKernels", "Chunks", "BFloat16Store,MiniFloatDecoder", true),
        })
        {
            MethodInfo method = Internal(type).GetMethod(kernel, BindingFlags.Public | BindingFlags.Static)!
                .MakeGenericMethod(arguments.Split(',').Select(Internal).ToArray());
            var entry = explicitlyGrouped ? EntryPointDescription.FromExplicitlyGroupedKernel(method) : EntryPointDescription.FromImplicitlyGroupedKernel(method);
            string file = $"{kernel}-{arguments.Replace(',', '-')}.ptx";
            File.WriteAllText(Path.Combine(ptxFolder, file), ((PTXCompiledKernel)accelerator.GetBackend().Compile(entry, default)).PTXAssembly);
        }
    }

    // Checked only (the general kernels): every other option the CPU quantizer has.
    var checkedOnly = new (string Name, RtnOptions Options)[]
    {
        ("int8 per-tensor", RtnOptions.W8PerChannel with { Granularity = Granularity.PerTensor }),
        ("fp8 block 128×128", RtnOptions.Fp8Block128),
        ("int4 g128 asymmetric", RtnOptions.W4Group128 with { Symmetric = false }),
        ("int4 g128 fp16 scales", RtnOptions.W4Group128 with { ScaleStorage = ScaleEncoding.Float16 }),
        ("int4 g128 bf16 scales", RtnOptions.W4Group128 with { ScaleStorage = ScaleEncoding.BFloat16 }),
        ("int4 g128 clipping", RtnOptions.W4Group128 with { Clipping = ClippingSearch.Default }),
        ("int3 g128", RtnOptions.W4Group128 with { Format = NumberFormat.Int3 }),
        ("fp6-e2m3 per-channel", RtnOptions.Fp8PerChannel with { Format = NumberFormat.Fp6E2M3 }),
        ("fp8-e5m2 non-saturating", RtnOptions.Fp8PerChannel with { Format = NumberFormat.Fp8E5M2, Saturate = false }),
        ("mxint8", new RtnOptions { Format = NumberFormat.Mxint8 }),
        ("nf4", RtnOptions.Nf4),
        ("ternary absmean", new RtnOptions { Format = NumberFormat.TernaryAbsMean, Granularity = Granularity.PerChannel }),
        ("ternary threshold g64", new RtnOptions { Format = NumberFormat.TernaryThreshold, Granularity = Granularity.PerGroup(64) }),
    };

    // 1. Correctness: fresh weights (outliers, a zero row) through both paths: an odd shape (the general kernels) and
    // one whose rows split into whole quads and groups (the bandwidth kernels that the timings below use).
    int failures = 0;
    foreach ((int checkRows, int checkColumns) in new[] { (509, 1031), (384, 4096) })
    foreach ((string name, RtnOptions options) in schemes.Concat(checkedOnly))
    {
        DenseTensor check = RandomWeight(checkRows, checkColumns, seed: Environment.TickCount);
        QuantizedTensor cpu = options.CreateCompressor().Quantize(check);
        QuantizedTensor device = new GpuRoundToNearestQuantizer(gpu, options).Quantize(check);
        long codeMismatches = cpu.PackedCodes.ToArray().Zip(device.PackedCodes.ToArray()).LongCount(p => p.First != p.Second);
        long scaleMismatches = cpu.Scales.ToArray().Zip(device.Scales.ToArray()).LongCount(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
        bool ok = codeMismatches == 0 && scaleMismatches == 0 && BitConverter.SingleToInt32Bits(cpu.GlobalScale) == BitConverter.SingleToInt32Bits(device.GlobalScale) &&
                  cpu.ZeroPoints.Span.SequenceEqual(device.ZeroPoints.Span) &&
                  MemoryMarshal.AsBytes(new GpuRoundToNearestQuantizer(gpu, options).Dequantize(cpu).Span).SequenceEqual(MemoryMarshal.AsBytes(cpu.Decompress().Span));
        failures += ok ? 0 : 1;
        if (codeMismatches > 0)
        {
            // Name the first differing element: what a fix needs to reproduce the case.
            byte[] cpuCodes = cpu.UnpackCodes(), deviceCodes = device.UnpackCodes();
            int at = Enumerable.Range(0, cpuCodes.Length).First(i => cpuCodes[i] != deviceCodes[i]);
            int row = at / checkColumns;
            float value = check.Span[at];
            Console.WriteLine($"  first at ({row}, {at % checkColumns}): w = {value:R} (0x{BitConverter.SingleToInt32Bits(value):X8}), " +
                              $"scale[0] of row = {cpu.Scales.Span[Math.Min(row * cpu.Scales.Length / checkRows, cpu.Scales.Length - 1)]:R}, cpu code {cpuCodes[at]}, device code {deviceCodes[at]}");
        }
        Console.WriteLine($"check {name,-22} {checkRows}×{checkColumns} {(ok ? "bit-exact" : $"MISMATCH: {codeMismatches} code bytes, {scaleMismatches} scales")}");
    }

    // BF16 inputs and device dequantization (float32 and BF16 outputs) of the timed schemes, bit for bit.
    failures += QuantizeBench.Check(gpu, RandomWeight);

    // 2. Timing on the device, no transfers inside the timed region.
    DenseTensor weight = RandomWeight(size, size, seed: 7);
    long elements = (long)size * size;
    using MemoryBuffer1D<float, Stride1D.Dense> input = accelerator.Allocate1D<float>(elements);
    using MemoryBuffer1D<float, Stride1D.Dense> copy = accelerator.Allocate1D<float>(elements);
    input.View.BaseView.CopyFromCPU(weight.Span);
    // Batches of back-to-back copies, one synchronisation each (QuantizeBench.BatchedMs): the ceiling is timed as the kernels are.
    int launchesPerBatch = simulator ? 1 : 10;
    double copyMs = QuantizeBench.BatchedMs(repetitions, launchesPerBatch, _ => copy.View.CopyFrom(input.View), accelerator);
    double copyBandwidth = 2.0 * 4 * elements / (copyMs * 1e-3) / 1e9;
    Console.WriteLine($"{"device-to-device copy",-22} {copyMs,8:F3} ms {copyBandwidth,8:F0} GB/s (read + written)");
    Console.WriteLine($"RESULT copy-f32|{size}x{size}|{copyMs:F4}|{copyBandwidth:F0}|ceiling (read + written)");
    QuantizeBench.Time(gpu, weight, input, size, repetitions, launchesPerBatch, copyBandwidth);

    // 4. The GPTQ Hessian on the device: M ← α·M + β·XᵀX for the issue's layer sizes (upper triangle computed).
    foreach ((int columns, int rows) in new[] { (1024, 4096), (4096, 2048) })
    {
        using var hessian = new GpuHessianAccumulator(gpu, columns);
        DenseTensor x = RandomWeight(rows, columns, seed: columns);
        using MemoryBuffer1D<float, Stride1D.Dense> batch = accelerator.Allocate1D<float>(x.Length);
        batch.View.BaseView.CopyFromCPU(x.Span);
        double ms = Median(Math.Min(repetitions, 20), () => hessian.Add(batch.View, rows), accelerator);
        double flops = 2.0 * columns * columns * rows;
        Console.WriteLine($"hessian {columns}×{columns} from {rows} rows {ms,8:F3} ms {flops / (ms * 1e-3) / 1e12,6:F1} TFLOP/s (full-matrix equivalent)");
    }

    return failures == 0 ? 0 : 1;
}

static DenseTensor RandomWeight(int rows, int columns, int seed)
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

    var tensor = new DenseTensor(values, rows, columns);
    tensor.Row(rows / 2).Clear();
    return tensor;
}

static double Median(int repetitions, Action run, Accelerator accelerator) =>
        DeviceTimer.Median(accelerator, repetitions, run);
