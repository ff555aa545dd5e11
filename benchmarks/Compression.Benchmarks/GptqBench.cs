using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Compression.Calibration;
using Compression.Quantization;
using Compression.Tensors;

namespace Compression.Benchmarks;

/// <summary>
/// GPTQ (INT4 per-channel, act-order: per-channel so that a block of one column is allowed; with groups, blocks hold
/// whole groups) on a square layer with correlated calibration inputs, against the same
/// algorithm without lazy batch updates (block size 1: every column's error updates the rest of the matrix at once,
/// as the paper's unblocked form does) measured in the same run. The comparison with the reference Python
/// implementation is in docs/gptq.md (`Compression.GpuBench gptq` beside `reference/gptq_reference.py`).
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
public class GptqBench
{
    private DenseTensor _weight = null!;
    private DenseTensor _inputs = null!;
    private HessianAccumulator _hessian = null!;

    [Params(512, 1024)]
    public int Columns { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(Columns);
        float Gauss() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        _weight = new DenseTensor(Columns, Columns);
        for (int i = 0; i < _weight.Length; i++)
        {
            _weight.Span[i] = 0.02f * Gauss();
        }

        _inputs = new DenseTensor(2 * Columns, Columns);
        for (int i = 0; i < _inputs.Length; i++)
        {
            _inputs.Span[i] = Gauss() * (i % Columns % 64 == 0 ? 20 : 1);
        }

        _hessian = Hessian();
    }

    [Benchmark]
    public HessianAccumulator Hessian()
    {
        var hessian = new HessianAccumulator(Columns);
        hessian.Add(_inputs);
        return hessian;
    }

    [Benchmark(Baseline = true)]
    public GptqTensor Unblocked() => Run(blockSize: 1);

    [Benchmark]
    public GptqTensor Blocked() => Run(blockSize: 128);

    private GptqTensor Run(int blockSize) =>
        new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerChannel }, ActOrder = true, BlockSize = blockSize })
            .Quantize(_weight, new CompressionContext { InputHessian = _hessian });
}
