using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using Compression.Numerics;
using Compression.Pruning;
using Compression.Pruning.Kernels;
using Compression.Pruning.Storage;
using Compression.Tensors;

namespace Compression.Benchmarks;

/// <summary>
/// Sparse × dense products Y = X·Wᵀ for a 4096×4096 weight, CSR (unstructured sparsity) and BSR with 16×16 blocks
/// (block sparsity: whole blocks pruned), against the dense product through <see cref="Gemm"/> in the same run, at
/// batch 1, 8 and 64 and sparsities 50–95%. Ratio = sparse time / dense time: below 1 the sparse kernel wins, and the
/// crossover sparsity is where it reaches 1 (benchmarks/README.md).
/// </summary>
/// <remarks>
/// Both sparse weights keep the same fraction of weights (drawn per weight for CSR, per block for BSR), so they do
/// the same number of multiply-adds; the dense product does all 4096² per batch row whatever the sparsity.
/// COMPRESSION_BENCH_SPARSITIES (comma-separated, e.g. "0.5,0.9") and COMPRESSION_BENCH_BATCHES shorten the grid.
/// </remarks>
[MemoryDiagnoser]
public class SparseMatrixMultiplyBench
{
    private const int N = 4096;
    private const int Block = 16;
    private float[] _dense = [];
    private DenseTensor _x = null!, _y = null!;
    private CsrTensor _csr = null!;
    private BsrTensor _bsr = null!;

    public static IEnumerable<double> Sparsities() => Parse("COMPRESSION_BENCH_SPARSITIES", [0.5, 0.7, 0.8, 0.9, 0.95], double.Parse);

    public static IEnumerable<int> Batches() => Parse("COMPRESSION_BENCH_BATCHES", [1, 8, 64], int.Parse);

    [ParamsSource(nameof(Batches))]
    public int Batch { get; set; }

    [ParamsSource(nameof(Sparsities))]
    public double Sparsity { get; set; }

    [GlobalSetup(Targets = [nameof(Dense), nameof(DenseRows)])]
    public void SetupDense() => Setup(csr: false, bsr: false);

    [GlobalSetup(Target = nameof(Csr))]
    public void SetupCsr() => Setup(csr: true, bsr: false);

    [GlobalSetup(Target = nameof(Bsr16))]
    public void SetupBsr() => Setup(csr: false, bsr: true);

    private void Setup(bool csr, bool bsr)
    {
        var random = new Random(7);
        _dense = new float[N * N];
        for (int i = 0; i < _dense.Length; i++)
        {
            _dense[i] = (float)(random.NextDouble() - 0.5);
        }

        var weight = new DenseTensor(_dense, N, N);
        if (csr)
        {
            var keep = new bool[N * N];
            for (int i = 0; i < keep.Length; i++)
            {
                keep[i] = random.NextDouble() >= Sparsity;
            }

            _csr = CsrTensor.FromPruned(new PrunedTensor(weight, SparsityMask.FromPredicate(N, N, keep, static (k, i) => k[i])));
        }

        if (bsr)
        {
            var keepBlock = new bool[N / Block * (N / Block)];
            for (int i = 0; i < keepBlock.Length; i++)
            {
                keepBlock[i] = random.NextDouble() >= Sparsity;
            }

            SparsityMask blocks = SparsityMask.FromPredicate(N, N, keepBlock, static (k, i) => k[(int)(i / N / Block * (N / Block) + i % N / Block)]);
            _bsr = BsrTensor.FromPruned(new PrunedTensor(weight, blocks), Block, Block);
        }

        _x = new DenseTensor(Batch, N);
        for (int i = 0; i < _x.Length; i++)
        {
            _x.Span[i] = (float)(random.NextDouble() - 0.5);
        }

        _y = new DenseTensor(Batch, N);
    }

    /// <summary>Y = X·Wᵀ with the dense weight: Core's packed GEMM, B read transposed.</summary>
    [Benchmark(Baseline = true)]
    public void Dense() =>
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.Transpose, Batch, N, N, 1f, _x.Span, N, _dense, N, 0f, _y.Span, N);

    /// <summary>
    /// The dense product as one dot product per output and batch row (rows over the cores, TensorPrimitives.Dot):
    /// at batch 1 a matrix-vector product that streams the weight once, where the GEMM's panel packing costs more
    /// than the product itself.
    /// </summary>
    [Benchmark]
    public void DenseRows()
    {
        float[] w = _dense;
        Memory<float> x = _x.Memory, y = _y.Memory;
        int batch = Batch;
        Parallel.For(0, N / 64, tile =>
        {
            ReadOnlySpan<float> input = x.Span;
            Span<float> output = y.Span;
            for (int r = tile * 64; r < tile * 64 + 64; r++)
            {
                ReadOnlySpan<float> row = w.AsSpan(r * N, N);
                for (int b = 0; b < batch; b++)
                {
                    output[b * N + r] = TensorPrimitives.Dot(row, input.Slice(b * N, N));
                }
            }
        });
    }

    [Benchmark]
    public void Csr() => SparseMatrixMultiply.Multiply(_csr, _x, _y);

    [Benchmark]
    public void Bsr16() => SparseMatrixMultiply.Multiply(_bsr, _x, _y);

    private static IEnumerable<T> Parse<T>(string variable, T[] defaults, Func<string, IFormatProvider, T> parse) =>
        Environment.GetEnvironmentVariable(variable)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => parse(s, System.Globalization.CultureInfo.InvariantCulture)) ?? defaults;
}
