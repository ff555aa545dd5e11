using BenchmarkDotNet.Attributes;
using Compression.Quantization.Rotation;
using Compression.Tensors;

namespace Compression.Benchmarks;

/// <summary>
/// Block-wise fast Walsh–Hadamard transform of a 4096×4096 float32 matrix in place (all cores), blocks of 32 (MXFP4,
/// MR-GPTQ) and 4096 (a full-row rotation), against a memcpy of the same 64 MiB measured in the same run. The
/// transform reads and writes each element once per cache-resident block, so memcpy speed is its ceiling for small
/// blocks; a full-row block of 16 KiB still fits in L1/L2 and adds log2(4096) = 12 stages of arithmetic.
/// </summary>
[MemoryDiagnoser]
public class HadamardBench
{
    private const int N = 4096;
    private DenseTensor _matrix = null!;
    private byte[] _copySource = [];
    private byte[] _copyDestination = [];

    [Params(32, 4096)]
    public int BlockSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        var values = new float[N * N];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)((random.NextDouble() - 0.5) * 0.1);
        }

        _matrix = new DenseTensor(values, N, N);
        // The transform is in place: read 64 MiB, write 64 MiB. A copy of 64 MiB moves the same bytes.
        _copySource = new byte[4 * N * N];
        _copyDestination = new byte[4 * N * N];
    }

    [Benchmark(Baseline = true)]
    public void Memcpy() => _copySource.AsSpan().CopyTo(_copyDestination);

    /// <summary>In place; the transform is its own inverse and orthonormal, so repeating it keeps the values bounded.</summary>
    [Benchmark]
    public void TransformBlocks() => WalshHadamard.TransformBlocks(_matrix, BlockSize);
}
