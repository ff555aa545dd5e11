// GPTQ on the layer sizes (INT4, groups of 128, act-order, damp 0.01, block 128), beside
// benchmarks/reference/gptq_reference.py. Prints seconds for the Hessian and for GPTQ, and the sum of GPTQ's
// per-column losses (the reference prints the same figure as "error") and the layer objective.
//   dotnet run -c Release benchmarks/gptq-timing.cs [folder [seed [sizes]]]   (sizes: e.g. 1024,4096)
// With a folder, it also writes each layer's inputs there (gptq-<cols>.safetensors: "weight" and "inputs", float32),
// so the reference can run on the same numbers:
//   python3 benchmarks/reference/gptq_reference.py <gptq checkout> cpu <folder>/gptq-1024-0.safetensors <folder>/gptq-4096-0.safetensors
#:project ../src/Compression.Quantization/Compression.Quantization.csproj
using System.Diagnostics;
using Compression;
using Compression.Calibration;
using Compression.Quantization;
using Compression.Safetensors;
using Compression.Tensors;

string? folder = args.Length > 0 ? args[0] : null;
int seed = args.Length > 1 ? int.Parse(args[1]) : 0;
int[] sizes = args.Length > 2 ? Array.ConvertAll(args[2].Split(','), int.Parse) : [1024, 4096];
foreach ((int cols, int n) in new[] { (1024, 4096), (4096, 2048) }.Where(c => sizes.Contains(c.Item1)))
{
    // Random weight; correlated inputs X = Z·A (A = I + noise/√cols) with every 64th channel ×20, as the reference script draws them.
    var random = new Random(cols + seed);
    float Gauss() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
    var w = new DenseTensor(cols, cols);
    for (int i = 0; i < w.Length; i++) w.Span[i] = 0.02f * Gauss();
    var z = new DenseTensor(n, cols);
    for (int i = 0; i < z.Length; i++) z.Span[i] = Gauss();
    var a = new DenseTensor(cols, cols);
    for (int i = 0; i < a.Length; i++) a.Span[i] = Gauss() / MathF.Sqrt(cols) + (i / cols == i % cols ? 1 : 0);
    var x = new DenseTensor(n, cols);
    Compression.Numerics.Gemm.Multiply(z.Span, a.Span, x.Span, n, cols, cols);
    for (int r = 0; r < n; r++) for (int c = 0; c < cols; c += 64) x[r, c] *= 20;
    if (folder is not null)
    {
        Directory.CreateDirectory(folder);
        var writer = new SafetensorsWriter();
        writer.Add("weight", w);
        writer.Add("inputs", x);
        writer.Save(Path.Combine(folder, $"gptq-{cols}-{seed}.safetensors"));
    }

    var clock = Stopwatch.StartNew();
    var hessian = new HessianAccumulator(cols, new HessianAccumulatorOptions { Precision = AccumulationPrecision.Single });
    for (int r = 0; r < n; r += 512) hessian.Add(DenseTensor.FromValues(x.Span.Slice(r * cols, 512 * cols), 512, cols));
    double hessianSeconds = clock.Elapsed.TotalSeconds;
    clock.Restart();
    // The reference's symmetric INT4 grid: 16 levels, scale = 2·amax/15, zero point 8 (our "full" symmetric range).
    var options = new GptqOptions { Quantization = RtnOptions.W4Group128 with { SymmetricRange = SymmetricRange.Full }, ActOrder = true };
    GptqTensor q = new GptqQuantizer(options).Quantize(w, new CompressionContext { InputHessian = hessian });
    // The reference counts a 2-D batch as one sample (its H is 2·XᵀX/batches, ours 2·XᵀX/rows), so its losses are
    // ours times the rows per batch (512); both are printed on its scale.
    Console.WriteLine($"{cols}x{cols}, {n} rows: hessian {hessianSeconds:F3} s, quantize {clock.Elapsed.TotalSeconds:F3} s, " +
                      $"error (sum of losses, reference scale) {q.Report!.TotalLoss * 512:F1}, objective {q.Report.Objective:F3}");
}
