// GPTQ timings on the layer sizes (INT4, groups of 128, act-order), beside benchmarks/reference/gptq_reference.py.
// Run: dotnet run -c Release benchmarks/gptq-timing.cs   (a file-based app; prints seconds for the Hessian and for GPTQ).
#:project ../src/Compression.Quantization/Compression.Quantization.csproj
using System.Diagnostics;
using Compression;
using Compression.Calibration;
using Compression.Quantization;
using Compression.Tensors;
foreach ((int cols, int n) in new[] { (1024, 4096), (4096, 2048) })
{
    var random = new Random(cols);
    float Gauss() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
    var w = new DenseTensor(cols, cols); for (int i = 0; i < w.Length; i++) w.Span[i] = 0.02f * Gauss();
    var x = new DenseTensor(n, cols); for (int i = 0; i < x.Length; i++) x.Span[i] = Gauss() * ((i % cols) % 64 == 0 ? 20 : 1);
    var sw = Stopwatch.StartNew();
    var h = new HessianAccumulator(cols, new HessianAccumulatorOptions { Precision = AccumulationPrecision.Single });
    for (int r = 0; r < n; r += 512) h.Add(DenseTensor.FromValues(x.Span.Slice(r * cols, 512 * cols), 512, cols));
    double hs = sw.Elapsed.TotalSeconds;
    var q = new GptqQuantizer(GptqOptions.W4Group128 with { ActOrder = true });
    sw.Restart();
    GptqTensor t = q.Quantize(w, new CompressionContext { InputHessian = h });
    Console.WriteLine($"{cols}x{cols}, {n} rows: hessian {hs:F3} s, quantize {sw.Elapsed.TotalSeconds:F3} s");
}
