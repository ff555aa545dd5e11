using Xunit.Abstractions;
using Compression.Gpu.Runtime;
using Compression.LowRank.Gpu;
using Compression.Tensors;
using Compression.Testing;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.LowRank.Tests;

/// <summary>
/// The device route of the randomized SVD on ILGPU's CPU simulator: the panel-product kernel against a float64 loop,
/// then the whole decomposition against the CPU route with the same seed (hence the same Ω).
/// </summary>
[Collection("Gpu")]
public sealed class GpuRandomizedSvdTests(ITestOutputHelper output) : IDisposable
{
    // Unit roundoff of float32.
    private const double Unit = 1.0 / (1 << 24);

    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public void Dispose() => _gpu.Dispose();

    /// <summary>Runs the kernel into an output poisoned with NaN, with <paramref name="guard"/> NaN cells past its end.</summary>
    private float[] Product(float[] panel, float[] a, int k, int rows, int columns, bool transpose, int guard)
    {
        int outLength = k * (transpose ? rows : columns);
        float[] poisoned = Enumerable.Repeat(float.NaN, outLength + guard).ToArray();
        using MemoryBuffer1D<float, Stride1D.Dense> p = _gpu.Accelerator.Allocate1D(panel);
        using MemoryBuffer1D<float, Stride1D.Dense> m = _gpu.Accelerator.Allocate1D(a);
        using MemoryBuffer1D<float, Stride1D.Dense> c = _gpu.Accelerator.Allocate1D(poisoned);
        GpuPanelProducts.Multiply(_gpu, p.View.BaseView, m.View.BaseView, c.View.BaseView.SubView(0, outLength), k, rows, columns, transpose);
        var result = new float[outLength + guard];
        c.View.BaseView.CopyToCPU(result);
        return result;
    }

    /// <summary>Values of every magnitude from 2⁻⁶ to 2⁶ and both signs, so cancellation happens in the sums.</summary>
    private static float[] Values(int count, int seed)
    {
        float[] g = RandomData.Gaussian(count, seed);
        var random = new Random(seed + 1);
        return g.Select(x => x * MathF.Pow(2, random.Next(-6, 7))).ToArray();
    }

    [Theory]
    [InlineData(5, 70, 50, false)]
    [InlineData(5, 70, 50, true)]
    [InlineData(22, 130, 90, false)]
    [InlineData(22, 130, 90, true)]
    [InlineData(1, 1, 1, false)]
    [InlineData(1, 1, 1, true)]
    [InlineData(65, 17, 129, false)]
    [InlineData(65, 129, 17, true)]
    public void Product_MatchesFloat64Loop(int k, int rows, int columns, bool transpose)
    {
        int reduction = transpose ? columns : rows, outColumns = transpose ? rows : columns;
        float[] panel = Values(k * reduction, seed: k + rows), a = Values(rows * columns, seed: columns);
        float[] c = Product(panel, a, k, rows, columns, transpose, guard: 0);

        // Float32 accumulation of L products: |ĉ − c| ≤ γ_L·Σ|p|·|a| with γ_L = L·u/(1 − L·u) (Higham, Accuracy and
        // Stability of Numerical Algorithms, §3.1), whatever the summation order or FMA use. The float64 reference is
        // exact to far below that (its own γ_L is 2²⁹ times smaller).
        double gamma = reduction * Unit / (1 - reduction * Unit);
        for (int s = 0; s < k; s++)
        {
            for (int j = 0; j < outColumns; j++)
            {
                double sum = 0, magnitude = 0;
                for (int r = 0; r < reduction; r++)
                {
                    double term = (double)panel[s * reduction + r] * (transpose ? a[j * columns + r] : a[r * columns + j]);
                    sum += term;
                    magnitude += Math.Abs(term);
                }

                double actual = c[s * outColumns + j];
                Assert.True(Math.Abs(actual - sum) <= gamma * magnitude, $"C[{s},{j}] = {actual}, float64 {sum}, bound {gamma * magnitude}");
            }
        }
    }

    [Theory]
    [InlineData(64, 64, 64, false)]
    [InlineData(64, 64, 64, true)]
    [InlineData(63, 65, 16, false)]
    [InlineData(63, 16, 65, true)]
    [InlineData(3, 200, 7, false)]
    [InlineData(3, 7, 200, true)]
    public void Product_OverwritesAPoisonedOutput_AndNothingBeyondIt(int k, int rows, int columns, bool transpose)
    {
        const int Guard = 97;
        int outLength = k * (transpose ? rows : columns);
        float[] c = Product(Values(k * (transpose ? columns : rows), seed: 1), Values(rows * columns, seed: 2), k, rows, columns, transpose, Guard);
        Assert.All(c[..outLength], value => Assert.True(float.IsFinite(value)));
        Assert.All(c[outLength..], value => Assert.True(float.IsNaN(value)));
    }

    /// <summary>A = Σ_j 0.8^j·x_j·y_jᵀ (Gaussian x, y scaled to unit expected norm) rounded to float32: a decaying
    /// spectrum, as trained weights have, with gaps of about 20% between neighbouring singular values.</summary>
    private static DenseTensor Decaying(int rows, int columns, int seed)
    {
        int r = Math.Min(rows, columns);
        float[] x = RandomData.Gaussian(rows * r, seed), y = RandomData.Gaussian(r * columns, seed + 1);
        var a = new DenseTensor(rows, columns);
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < columns; j++)
            {
                double sum = 0;
                for (int t = 0; t < r; t++)
                {
                    sum += Math.Pow(0.8, t) * x[i * r + t] * y[t * columns + j];
                }

                a[i, j] = (float)(sum / Math.Sqrt(rows * (double)columns));
            }
        }

        return a;
    }

    [Theory]
    [InlineData(70, 50, 5, 2)]
    [InlineData(130, 90, 12, 2)]
    [InlineData(50, 70, 5, 1)]
    [InlineData(90, 130, 12, 0)]
    public void Decompose_AgreesWithTheCpuRandomizedSvd(int rows, int columns, int rank, int powerIterations)
    {
        DenseTensor w = Decaying(rows, columns, seed: rows + rank);
        var options = new RandomizedSvdOptions { PowerIterations = powerIterations, Seed = 42 };
        SingularValueDecomposition cpu = SingularValueDecomposition.Randomized(w, rank, options);
        SingularValueDecomposition gpu = new GpuRandomizedSvd(_gpu, options).Decompose(w, rank);

        Assert.Equal((rows, columns, rank), (gpu.Rows, gpu.Columns, gpu.Rank));
        // The routes differ only by float32 rounding: of Ω and the Q panels on upload (u = 6e-8 relative) and of the
        // float32 accumulation (at most γ_L ≈ 8e-6 of Σ|q|·|a|, typically √L·u ≈ 7e-7 for L ≤ 130). The range finder
        // divides that by the spectral gaps (20% here) and the float64 QR re-orthonormalises, so the factors agree to
        // a few 1e-7 (measured: |Δσ| ≤ 5e-8·σ₁, ‖Â_device − Â_cpu‖ ≤ 5e-7·‖A‖, leading vectors ≤ 2e-7 per entry).
        // The bounds below, 1e-6·σ₁ and 1e-5·‖A‖_F, leave a factor of 20 and still catch any indexing or staging
        // error, which would move them by O(1).
        double scale = cpu.SingularValues[0];
        for (int j = 0; j < rank; j++)
        {
            Assert.True(Math.Abs(gpu.SingularValues[j] - cpu.SingularValues[j]) <= 1e-6 * scale,
                $"σ[{j}]: device {gpu.SingularValues[j]}, CPU {cpu.SingularValues[j]}");
        }

        double[] a = w.Span.ToArray().Select(v => (double)v).ToArray();
        double[] gpuA = gpu.Reconstruct(), cpuA = cpu.Reconstruct();
        double norm = Math.Sqrt(a.Sum(v => v * v));
        double between = Math.Sqrt(gpuA.Zip(cpuA).Sum(p => (p.First - p.Second) * (p.First - p.Second)));
        Assert.True(between <= 1e-5 * norm, $"‖Â_device − Â_cpu‖ = {between}, ‖A‖ = {norm}");
        double gpuError = Math.Sqrt(a.Zip(gpuA).Sum(p => (p.First - p.Second) * (p.First - p.Second)));
        double cpuError = Math.Sqrt(a.Zip(cpuA).Sum(p => (p.First - p.Second) * (p.First - p.Second)));
        Assert.True(Math.Abs(gpuError - cpuError) <= 1e-5 * norm, $"errors: device {gpuError}, CPU {cpuError}");

        double worstValue = Enumerable.Range(0, rank).Max(j => Math.Abs(gpu.SingularValues[j] - cpu.SingularValues[j])) / scale;
        double worstVector = Enumerable.Range(0, Math.Min(rank, 4)).Max(j => Math.Max(
            Enumerable.Range(0, columns).Max(c => Math.Abs(gpu.VT[j * columns + c] - cpu.VT[j * columns + c])),
            Enumerable.Range(0, rows).Max(i => Math.Abs(gpu.U[i * rank + j] - cpu.U[i * rank + j]))));
        output.WriteLine($"{rows}×{columns} rank {rank}, q = {powerIterations}: max |Δσ|/σ₁ = {worstValue:E2}, " +
                         $"‖Â_device − Â_cpu‖/‖A‖ = {between / norm:E2}, max |Δ(leading vectors)| = {worstVector:E2}");

        // Same sign convention, so the leading singular vectors (gaps of 20%) agree entry by entry: 1e-5 of their unit
        // norm (measured 2e-7).
        for (int j = 0; j < Math.Min(rank, 4); j++)
        {
            for (int c = 0; c < columns; c++)
            {
                Assert.True(Math.Abs(gpu.VT[j * columns + c] - cpu.VT[j * columns + c]) <= 1e-5, $"Vᵀ[{j},{c}]");
            }

            for (int i = 0; i < rows; i++)
            {
                Assert.True(Math.Abs(gpu.U[i * rank + j] - cpu.U[i * rank + j]) <= 1e-5, $"U[{i},{j}]");
            }
        }
    }

    [Fact]
    public void Decompose_MatrixOnTheDevice_GivesTheSameFactorsAsTheTensor()
    {
        DenseTensor w = Decaying(70, 50, seed: 3);
        var svd = new GpuRandomizedSvd(_gpu);
        SingularValueDecomposition fromTensor = svd.Decompose(w, 5);
        using MemoryBuffer1D<float, Stride1D.Dense> device = _gpu.Accelerator.Allocate1D(w.Span.ToArray());
        SingularValueDecomposition fromView = svd.Decompose(device.View.BaseView, 70, 50, 5);
        Assert.Equal(fromTensor.SingularValues, fromView.SingularValues);
        Assert.Equal(fromTensor.U, fromView.U);
        Assert.Equal(fromTensor.VT, fromView.VT);
    }

    [Fact]
    public void Decompose_RejectsBadArguments()
    {
        var svd = new GpuRandomizedSvd(_gpu);
        DenseTensor w = RandomData.GaussianMatrix(20, 10, seed: 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => svd.Decompose(w, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => svd.Decompose(w, 11));
        w[3, 4] = float.NaN;
        Assert.Contains("(3, 4)", Assert.Throws<ArgumentException>(() => svd.Decompose(w, 2)).Message);

        // On the device the values are not scanned; a non-finite one shows up in the first product.
        using MemoryBuffer1D<float, Stride1D.Dense> device = _gpu.Accelerator.Allocate1D(w.Span.ToArray());
        Assert.Throws<ArgumentException>(() => svd.Decompose(device.View.BaseView, 20, 10, 2));
        Assert.Throws<ArgumentException>(() => svd.Decompose(device.View.BaseView, 20, 11, 2));
    }
}
