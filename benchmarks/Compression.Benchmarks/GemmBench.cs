using BenchmarkDotNet.Attributes;
using Compression.Numerics;

namespace Compression.Benchmarks;

/// <summary>
/// float32 <see cref="Gemm"/> at the sizes GPTQ meets (a 1024³ square product and the lazy-batch update shape
/// 4096 × 128 × 4096) against the naive triple loop at 256³, in the same run.
/// </summary>
/// <remarks>
/// GFLOP/s = 2·m·n·k / time. Peak of the 2-core AMD EPYC (Zen 4) VM: each core retires one 512-bit FMA (or two
/// 256-bit ones) per cycle = 16 float32 lanes × 2 flops; at the 2.6 GHz /proc/cpuinfo reports that is
/// 2 × 16 × 2 × 2.6 = 166 GFLOP/s in float32 (83 in float64). Boost clocks, if the host grants them, raise it.
/// </remarks>
[MemoryDiagnoser]
public class GemmBench
{
    private float[] _a256 = [], _b256 = [], _c256 = [];
    private float[] _a1024 = [], _b1024 = [], _c1024 = [];
    private float[] _e = [], _h = [], _w = [];

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(11);
        float[] Fill(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        (_a256, _b256, _c256) = (Fill(256 * 256), Fill(256 * 256), new float[256 * 256]);
        (_a1024, _b1024, _c1024) = (Fill(1024 * 1024), Fill(1024 * 1024), new float[1024 * 1024]);
        (_e, _h, _w) = (Fill(4096 * 128), Fill(128 * 4096), Fill(4096 * 4096));
    }

    /// <summary>The reference: i-p-j triple loop (the cache-friendly order, auto-vectorised at best), 256³.</summary>
    [Benchmark(Baseline = true)]
    public void NaiveTripleLoop256()
    {
        const int N = 256;
        float[] a = _a256, b = _b256, c = _c256;
        Array.Clear(c);
        for (int i = 0; i < N; i++)
        {
            for (int p = 0; p < N; p++)
            {
                float aip = a[i * N + p];
                for (int j = 0; j < N; j++)
                {
                    c[i * N + j] += aip * b[p * N + j];
                }
            }
        }
    }

    [Benchmark]
    public void Gemm256() => Gemm.Multiply(_a256, _b256, _c256, 256, 256, 256);

    [Benchmark]
    public void Gemm1024() => Gemm.Multiply(_a1024, _b1024, _c1024, 1024, 1024, 1024);

    /// <summary>GPTQ's lazy batch update W −= E·Hinv[block, rest] with a 128-column block (β = 1, in place).</summary>
    [Benchmark]
    public void Gemm4096x128x4096() =>
        Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.None, 4096, 4096, 128, -1f, _e, 128, _h, 4096, 1f, _w, 4096);
}
