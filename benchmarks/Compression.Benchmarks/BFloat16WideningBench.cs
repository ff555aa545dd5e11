using BenchmarkDotNet.Attributes;
using Compression.Tensors;

namespace Compression.Benchmarks;

/// <summary>
/// BF16 → float32 widening (how every BF16 checkpoint is read) against its ceiling, a memcpy moving the same number
/// of bytes (the conversion reads 2 and writes 4 per element: 6 bytes; the copy reads 3 and writes 3), and against a
/// plain scalar loop. Ratio below 1 means faster than the copy of equal traffic.
/// </summary>
[MemoryDiagnoser]
public class BFloat16WideningBench
{
    private BFloat16[] _source = [];
    private float[] _destination = [];
    private byte[] _copySource = [];
    private byte[] _copyDestination = [];

    /// <summary>Elements: 16 Mi (a 4096×4096 weight), well beyond the caches.</summary>
    [Params(16 * 1024 * 1024)]
    public int Length { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        _source = Enumerable.Range(0, Length).Select(_ => (BFloat16)(float)(random.NextDouble() - 0.5)).ToArray();
        _destination = new float[Length];
        _copySource = new byte[3 * Length];
        _copyDestination = new byte[3 * Length];
    }

    /// <summary>The ceiling: 6 bytes of traffic per element, as the conversion has.</summary>
    [Benchmark(Baseline = true)]
    public void Memcpy() => _copySource.AsSpan().CopyTo(_copyDestination);

    [Benchmark]
    public void Vectorized() => NumericConversions.ConvertToSingle(_source, _destination);

    [Benchmark]
    public void ScalarLoop()
    {
        BFloat16[] source = _source;
        float[] destination = _destination;
        for (int i = 0; i < source.Length; i++)
        {
            destination[i] = (float)source[i];
        }
    }
}
