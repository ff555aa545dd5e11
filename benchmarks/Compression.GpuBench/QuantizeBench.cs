// Quantize + pack and dequantize on the device for the issue's schemes, from float32 and BF16 weights and to float32
// and BF16 outputs: checked bit for bit against the CPU path first, then timed against the same-run copy ceiling.
// Called by the default mode of Program.cs.

using System.Runtime.InteropServices;
using Compression.Gpu.Runtime;
using Compression.Quantization;
using Compression.Quantization.Gpu;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

internal static class QuantizeBench
{
    /// <summary>The schemes of the issue: a display name, the slug of the RESULT lines, the options.</summary>
    public static readonly (string Name, string Slug, RtnOptions Options)[] Schemes =
    [
        ("int8 per-channel", "int8-per-channel", RtnOptions.W8PerChannel),
        ("int4 group-128", "int4-g128", RtnOptions.W4Group128),
        ("fp8-e4m3 per-channel", "fp8-e4m3-per-channel", RtnOptions.Fp8PerChannel),
        ("mxfp8-e4m3", "mxfp8-e4m3", new RtnOptions { Format = NumberFormat.Mxfp8E4M3 }),
        ("mxfp4", "mxfp4", RtnOptions.Mxfp4),
        ("nvfp4", "nvfp4", RtnOptions.Nvfp4),
    ];

    /// <summary>Median milliseconds of one launch: <paramref name="repetitions"/> batches of <paramref name="batch"/>
    /// back-to-back launches (one synchronisation per batch, so its latency is spread over the launches) (launch i gets i, to rotate buffers), each batch timed from its first launch to the
    /// synchronisation after its last, divided by the launches.</summary>
    public static double BatchedMs(int repetitions, int batch, Action<int> launch, Accelerator accelerator)
    {
        for (int i = 0; i < batch; i++)
        {
            launch(i);
        }

        accelerator.Synchronize();
        var times = new double[repetitions];
        int next = 0;
        for (int r = 0; r < repetitions; r++)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int i = 0; i < batch; i++)
            {
                launch(next++);
            }

            accelerator.Synchronize();
            times[r] = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds / batch;
        }

        Array.Sort(times);
        return times[repetitions / 2];
    }

    /// <summary>BF16 inputs and device dequantization (float32 and BF16 outputs) against the CPU, bit for bit, on a
    /// shape of the bandwidth kernels and an odd one. Returns the number of failed checks.</summary>
    public static int Check(GpuContext gpu, Func<int, int, int, DenseTensor> randomWeight)
    {
        int failures = 0;
        foreach ((int rows, int columns) in new[] { (509, 1031), (384, 4096) })
        foreach ((string name, _, RtnOptions options) in Schemes)
        {
            DenseTensor source = randomWeight(rows, columns, Environment.TickCount);
            (ushort[] bits, DenseTensor widened) = ToBFloat16(source);
            QuantizedTensor cpu = options.CreateCompressor().Quantize(widened);
            var quantizer = new GpuRoundToNearestQuantizer(gpu, options);

            (byte[] packed, float[] scales, float tensorScale) = QuantizeBFloat16(gpu, quantizer, bits, rows, columns, cpu.RowStride, cpu.Scales.Length);
            long codeMismatches = cpu.PackedCodes.ToArray().Zip(packed).LongCount(p => p.First != p.Second);
            long scaleMismatches = cpu.Scales.ToArray().Zip(scales).LongCount(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
            bool globalSame = options.Format != NumberFormat.Nvfp4 || BitConverter.SingleToInt32Bits(cpu.GlobalScale) == BitConverter.SingleToInt32Bits(tensorScale);
            bool ok = codeMismatches == 0 && scaleMismatches == 0 && globalSame;
            failures += ok ? 0 : 1;
            Console.WriteLine($"check {name,-22} {rows}×{columns} bf16 input       {(ok ? "bit-exact" : $"MISMATCH: {codeMismatches} code bytes, {scaleMismatches} scales, tensor scale {(globalSame ? "same" : "differs")}")}");

            DenseTensor expected = cpu.Decompress();
            var expectedBits = new BFloat16[expected.Length];
            NumericConversions.ConvertToBFloat16(expected.Span, expectedBits);
            (float[] single, ushort[] half) = Dequantize(gpu, quantizer, cpu);
            long singleMismatches = Count(MemoryMarshal.Cast<float, int>(expected.Span), MemoryMarshal.Cast<float, int>(single.AsSpan()));
            long halfMismatches = Count(MemoryMarshal.Cast<BFloat16, ushort>(expectedBits.AsSpan()), half);
            failures += singleMismatches == 0 ? 0 : 1;
            failures += halfMismatches == 0 ? 0 : 1;
            Console.WriteLine($"check {name,-22} {rows}×{columns} dequantize f32   {(singleMismatches == 0 ? "bit-exact" : $"MISMATCH: {singleMismatches} values")}");
            Console.WriteLine($"check {name,-22} {rows}×{columns} dequantize bf16  {(halfMismatches == 0 ? "bit-exact" : $"MISMATCH: {halfMismatches} values")}");
        }

        return failures;
    }

    /// <summary>Times quantize + pack from float32 (<paramref name="input"/>) and BF16, and dequantize to float32 and
    /// BF16, for every scheme on the <paramref name="size"/>² weight; prints a table and RESULT lines.</summary>
    public static void Time(GpuContext gpu, DenseTensor weight, MemoryBuffer1D<float, Stride1D.Dense> input, int size, int repetitions, int batch,
        double copyBandwidth)
    {
        Accelerator accelerator = gpu.Accelerator;
        long elements = (long)size * size;
        string shape = $"{size}x{size}";
        (ushort[] bits, _) = ToBFloat16(weight);
        using MemoryBuffer1D<ushort, Stride1D.Dense> inputBFloat16 = accelerator.Allocate1D(bits);
        // Dequantize outputs: 268 MB (float32) or 134 MB (BF16) written per launch, so they do not stay in L2 either.
        using MemoryBuffer1D<float, Stride1D.Dense> outputSingle = accelerator.Allocate1D<float>(elements);
        using MemoryBuffer1D<ushort, Stride1D.Dense> outputHalf = accelerator.Allocate1D<ushort>(elements);
        Console.WriteLine($"{"scheme",-22} {"work",-16} {"time",11} {"traffic",11} {"of copy",8}");

        foreach ((string name, string slug, RtnOptions options) in Schemes)
        {
            var quantizer = new GpuRoundToNearestQuantizer(gpu, options);
            QuantizedTensor probe = options.CreateCompressor().Quantize(DenseTensor.FromValues(weight.Span[..(size * 64)], 64, size));
            long stride = probe.RowStride;
            long groups = (long)probe.Scales.Length / 64 * size;
            long packedBytes = stride * size;
            // The packed codes are small (33 MB for INT4): dequantize rotates among copies of them and their scales
            // holding 200 MB or more together, so each launch reads from DRAM, not from the 60 MB L2.
            int copies = (int)Math.Clamp((200L << 20) / (packedBytes + 4 * groups) + 1, 1, 16);
            var packed = new MemoryBuffer1D<byte, Stride1D.Dense>[copies];
            var scales = new MemoryBuffer1D<float, Stride1D.Dense>[copies];
            for (int c = 0; c < copies; c++)
            {
                packed[c] = accelerator.Allocate1D<byte>(packedBytes);
                scales[c] = accelerator.Allocate1D<float>(groups);
            }

            try
            {
                using MemoryBuffer1D<byte, Stride1D.Dense> zeros = accelerator.Allocate1D<byte>(groups);
                using MemoryBuffer1D<float, Stride1D.Dense> workspace = accelerator.Allocate1D<float>(GpuRoundToNearestQuantizer.WorkspaceLength(size));
                ArrayView<float> tensorScale = workspace.View.SubView(GpuRoundToNearestQuantizer.WorkspaceLength(size) - 1, 1);
                double codeAndScaleBytes = packedBytes + 4.0 * groups;

                double ms = BatchedMs(repetitions, batch, i => quantizer.QuantizeOnDevice(input.View, size, size, packed[i % copies].View, scales[i % copies].View,
                    zeros.View, workspace.View), accelerator);
                Report(name, slug, "quantize", "f32", shape, ms, 4.0 * elements + codeAndScaleBytes, copyBandwidth, options);

                ms = BatchedMs(repetitions, batch, i => quantizer.QuantizeOnDevice(inputBFloat16.View, size, size, packed[i % copies].View, scales[i % copies].View,
                    zeros.View, workspace.View), accelerator);
                Report(name, slug, "quantize", "bf16", shape, ms, 2.0 * elements + codeAndScaleBytes, copyBandwidth, options);

                // Every copy gets real codes to decode.
                for (int c = 0; c < copies; c++)
                {
                    quantizer.QuantizeOnDevice(inputBFloat16.View, size, size, packed[c].View, scales[c].View, zeros.View, workspace.View);
                }

                ms = BatchedMs(repetitions, batch, i => quantizer.DequantizeOnDevice(packed[i % copies].View, scales[i % copies].View, zeros.View, tensorScale,
                    size, size, outputSingle.View), accelerator);
                Report(name, slug, "dequantize", "f32", shape, ms, codeAndScaleBytes + 4.0 * elements, copyBandwidth, options);

                ms = BatchedMs(repetitions, batch, i => quantizer.DequantizeOnDevice(packed[i % copies].View, scales[i % copies].View, zeros.View, tensorScale,
                    size, size, outputHalf.View), accelerator);
                Report(name, slug, "dequantize", "bf16", shape, ms, codeAndScaleBytes + 2.0 * elements, copyBandwidth, options);
            }
            finally
            {
                for (int c = 0; c < copies; c++)
                {
                    packed[c].Dispose();
                    scales[c].Dispose();
                }
            }
        }
    }

    private static void Report(string name, string slug, string work, string dtype, string shape, double ms, double bytes, double copyBandwidth,
        RtnOptions options)
    {
        double bandwidth = bytes / (ms * 1e-3) / 1e9;
        double percent = 100 * bandwidth / copyBandwidth;
        // NVFP4's quantize reads the weight twice (tensor absmax, then the codes); the traffic counts it once, as for
        // the other schemes, so its share of the copy is at most about half.
        string note = work == "quantize" && options.Format == NumberFormat.Nvfp4 ? " (weight read twice by definition; counted once)" : "";
        Console.WriteLine($"{name,-22} {work + " " + dtype,-16} {ms,8:F3} ms {bandwidth,7:F0} GB/s {percent,7:F1}%{note}");
        Console.WriteLine($"RESULT {work}-{slug}-{dtype}|{shape}|{ms:F4}|{bandwidth:F0}|{percent:F1}% of copy");
    }

    private static (ushort[] Bits, DenseTensor Widened) ToBFloat16(DenseTensor source)
    {
        var bf16 = new BFloat16[source.Length];
        NumericConversions.ConvertToBFloat16(source.Span, bf16);
        var widened = new DenseTensor(source.Rows, source.Columns);
        NumericConversions.ConvertToSingle(bf16, widened.Span);
        return (MemoryMarshal.Cast<BFloat16, ushort>(bf16).ToArray(), widened);
    }

    /// <summary>Quantizes BF16 bits on the device into poisoned buffers; returns the codes, scales and (NVFP4) tensor scale.</summary>
    private static (byte[] Packed, float[] Scales, float TensorScale) QuantizeBFloat16(GpuContext gpu, GpuRoundToNearestQuantizer quantizer, ushort[] bits,
        int rows, int columns, int stride, int groups)
    {
        Accelerator accelerator = gpu.Accelerator;
        using MemoryBuffer1D<ushort, Stride1D.Dense> weight = accelerator.Allocate1D(bits);
        using MemoryBuffer1D<byte, Stride1D.Dense> packed = accelerator.Allocate1D(Enumerable.Repeat((byte)0xA5, rows * stride).ToArray());
        using MemoryBuffer1D<float, Stride1D.Dense> scales = accelerator.Allocate1D(Enumerable.Repeat(float.NaN, groups).ToArray());
        using MemoryBuffer1D<byte, Stride1D.Dense> zeros = accelerator.Allocate1D<byte>(groups);
        int workspaceLength = quantizer.WorkspaceLength(rows, columns);
        using MemoryBuffer1D<float, Stride1D.Dense> workspace = accelerator.Allocate1D(Enumerable.Repeat(float.NaN, workspaceLength).ToArray());
        quantizer.QuantizeOnDevice(weight.View, rows, columns, packed.View, scales.View, zeros.View, workspace.View);
        accelerator.Synchronize();
        var tensorScale = new float[1];
        workspace.View.SubView(GpuRoundToNearestQuantizer.WorkspaceLength(rows) - 1, 1).BaseView.CopyToCPU(tensorScale);
        return (packed.GetAsArray1D(), scales.GetAsArray1D(), tensorScale[0]);
    }

    /// <summary>Decodes <paramref name="q"/>'s codes on the device into poisoned float32 and BF16 outputs.</summary>
    private static (float[] Single, ushort[] Half) Dequantize(GpuContext gpu, GpuRoundToNearestQuantizer quantizer, QuantizedTensor q)
    {
        Accelerator accelerator = gpu.Accelerator;
        int total = q.Rows * q.Columns;
        using MemoryBuffer1D<byte, Stride1D.Dense> packed = accelerator.Allocate1D(q.PackedCodes.ToArray());
        using MemoryBuffer1D<float, Stride1D.Dense> scales = accelerator.Allocate1D(q.Scales.ToArray());
        using MemoryBuffer1D<byte, Stride1D.Dense> zeros = accelerator.Allocate1D(q.ZeroPoints.IsEmpty ? new byte[1] : q.ZeroPoints.ToArray());
        using MemoryBuffer1D<float, Stride1D.Dense> global = accelerator.Allocate1D(new[] { q.GlobalScale });
        using MemoryBuffer1D<float, Stride1D.Dense> single = accelerator.Allocate1D(Enumerable.Repeat(float.NaN, total).ToArray());
        using MemoryBuffer1D<ushort, Stride1D.Dense> half = accelerator.Allocate1D(Enumerable.Repeat((ushort)0x7FC1, total).ToArray());
        quantizer.DequantizeOnDevice(packed.View, scales.View, zeros.View, global.View, q.Rows, q.Columns, single.View);
        quantizer.DequantizeOnDevice(packed.View, scales.View, zeros.View, global.View, q.Rows, q.Columns, half.View);
        accelerator.Synchronize();
        return (single.GetAsArray1D(), half.GetAsArray1D());
    }

    private static long Count<T>(ReadOnlySpan<T> expected, ReadOnlySpan<T> actual)
        where T : IEquatable<T>
    {
        long mismatches = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            mismatches += expected[i].Equals(actual[i]) ? 0 : 1;
        }

        return mismatches;
    }
}
