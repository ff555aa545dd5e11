using BenchmarkDotNet.Attributes;
using Compression.Quantization;
using Compression.Tensors;

namespace Compression.Benchmarks;

/// <summary>
/// Quantize + pack of a 4096×4096 float32 weight in each format, against a memcpy moving the same number of bytes
/// (64 MiB read plus the packed codes and scales written), measured in the same run. Ratio = time / memcpy time:
/// 2.0 means half of memcpy speed.
/// </summary>
[MemoryDiagnoser]
public class QuantizeBench
{
    private const int N = 4096;
    private DenseTensor _weight = null!;
    private RoundToNearestQuantizer _quantizer = null!;
    private QuantizedTensorStorage _storage = null!;
    private byte[] _copySource = [];
    private byte[] _copyDestination = [];

    /// <summary>Every scheme, or those named in COMPRESSION_BENCH_SCHEMES (comma-separated) for a shorter run.</summary>
    public static IEnumerable<string> Schemes() =>
        Environment.GetEnvironmentVariable("COMPRESSION_BENCH_SCHEMES")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ??
        ["int8/per-channel", "int4/group-128", "int3/group-128", "int2/group-128", "fp8-e4m3/per-channel", "fp8-e5m2/per-channel",
         "fp6-e2m3/per-channel", "fp4-e2m1/group-128", "mxfp8-e4m3", "mxfp6-e2m3", "mxfp4", "mxint8", "nvfp4", "nf4", "ternary-absmean/per-channel"];

    [ParamsSource(nameof(Schemes))]
    public string Scheme { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        var values = new float[N * N];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)((random.NextDouble() - 0.5) * 0.1);
        }

        _weight = new DenseTensor(values, N, N);
        string[] parts = Scheme.Split('/');
        var options = new RtnOptions
        {
            Format = NumberFormat.FromName(parts[0]),
            Granularity = parts.Length > 1 ? (parts[1] == "per-channel" ? Granularity.PerChannel : Granularity.PerGroup(128)) : null,
        };
        _quantizer = options.CreateCompressor();
        _storage = QuantizedTensorStorage.Create(options, N, N);

        // The same traffic as the quantizer: read the float32 weight, write the packed result.
        long written = _quantizer.Quantize(_weight).StorageBits / 8;
        int half = (int)((4L * N * N + written) / 2);
        _copySource = new byte[half];
        _copyDestination = new byte[half];
    }

    [Benchmark(Baseline = true)]
    public void Memcpy() => _copySource.AsSpan().CopyTo(_copyDestination);

    /// <summary>The same copy into a new array of the result's size, as the quantizer must produce one: shows what
    /// allocating and first-touching fresh memory costs on this machine.</summary>
    [Benchmark]
    public byte[] MemcpyIntoNewArray()
    {
        byte[] destination = GC.AllocateUninitializedArray<byte>(_copyDestination.Length);
        _copySource.AsSpan().CopyTo(destination);
        return destination;
    }

    /// <summary>A fresh result each call (what a one-off caller pays, allocation and first touch included).</summary>
    [Benchmark]
    public QuantizedTensor Quantize() => _quantizer.Quantize(_weight);

    /// <summary>Into reusable storage, as a layer-by-layer pipeline does: the same work as the memcpy baseline, which
    /// also writes into an existing buffer.</summary>
    [Benchmark]
    public QuantizedTensor QuantizeIntoStorage() => _quantizer.Quantize(_weight, _storage);
}
