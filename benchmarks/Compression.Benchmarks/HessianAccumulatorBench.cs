using BenchmarkDotNet.Attributes;
using Compression.Calibration;

namespace Compression.Benchmarks;

/// <summary>
/// One calibration batch into the Hessian (c = 512 features, b = 256 tokens) against the naive float64 triple loop
/// that the tests use as the reference.
/// </summary>
[MemoryDiagnoser]
public class HessianAccumulatorBench
{
    private const int Columns = 512;
    private const int Rows = 256;
    private float[] _batch = [];
    private double[] _naive = [];
    private HessianAccumulator _double = null!;
    private HessianAccumulator _single = null!;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(7);
        _batch = Enumerable.Range(0, Rows * Columns).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        _naive = new double[Columns * Columns];
        _double = new HessianAccumulator(Columns);
        _single = new HessianAccumulator(Columns, new HessianAccumulatorOptions { Precision = AccumulationPrecision.Single });
    }

    /// <summary>The reference: x xᵀ added row by row, full matrix, float64.</summary>
    [Benchmark(Baseline = true)]
    public void NaiveFloat64()
    {
        float[] batch = _batch;
        double[] sum = _naive;
        for (int r = 0; r < Rows; r++)
        {
            for (int i = 0; i < Columns; i++)
            {
                double xi = batch[r * Columns + i];
                for (int j = 0; j < Columns; j++)
                {
                    sum[i * Columns + j] += xi * batch[r * Columns + j];
                }
            }
        }
    }

    [Benchmark]
    public void AccumulatorFloat64() => _double.Add(_batch, Rows);

    [Benchmark]
    public void AccumulatorFloat32() => _single.Add(_batch, Rows);
}
