using System.Reflection;
using Compression.Gpu.Kernels;
using Compression.Gpu.Runtime;
using Compression.Gpu.Sparse;
using Compression.Testing;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Compression.Gpu.Tests;

/// <summary>
/// The sparse × dense kernels and the N:M decompression on ILGPU's CPU simulator, against scalar references written
/// here from the layouts' definitions (this project does not reference Compression.Pruning).
/// </summary>
[Collection("Gpu")]
public sealed class GpuSparseMatrixMultiplyTests : IDisposable
{
    private static readonly object s_testCsrKey = new();
    private readonly GpuContext _gpu = GpuContext.CreateCpuSimulator();

    public void Dispose() => _gpu.Dispose();

    /// <summary>A random CSR matrix: each row draws a density in {0, 0.3, 1}, so empty and full rows occur.</summary>
    private static (int[] Pointers, int[] Columns, float[] Values) RandomCsr(int rows, int columns, int seed)
    {
        var random = new Random(seed);
        var pointers = new int[rows + 1];
        var indices = new List<int>();
        var values = new List<float>();
        for (int r = 0; r < rows; r++)
        {
            double density = new[] { 0, 0.3, 1 }[random.Next(3)];
            for (int c = 0; c < columns; c++)
            {
                if (random.NextDouble() < density)
                {
                    indices.Add(c);
                    values.Add((float)(random.NextDouble() * 2 - 1));
                }
            }

            pointers[r + 1] = indices.Count;
        }

        return (pointers, indices.ToArray(), values.ToArray());
    }

    /// <summary>
    /// Y = X·Aᵀ in float64 from a dense A, with each sum's scale Σ|a·x|: the kernels add at most ~100 float32 products,
    /// whose rounding stays far below 1e-5 of that scale (n·2⁻²⁴ ≈ 6e-6 in the worst case for n = 100).
    /// </summary>
    private static void AssertProduct(float[] dense, int rows, int columns, float[] x, int batch, float[] y)
    {
        for (int b = 0; b < batch; b++)
        {
            for (int r = 0; r < rows; r++)
            {
                double sum = 0, scale = 0;
                for (int c = 0; c < columns; c++)
                {
                    double p = (double)dense[r * columns + c] * x[b * columns + c];
                    sum += p;
                    scale += Math.Abs(p);
                }

                Assert.True(Math.Abs(y[b * rows + r] - sum) <= 1e-5 * scale + 1e-30, $"Y[{b}, {r}] = {y[b * rows + r]:R}, reference {sum:R}");
            }
        }
    }

    private static float[] Dense(int rows, int columns, int[] pointers, int[] indices, float[] values)
    {
        var dense = new float[rows * columns];
        for (int r = 0; r < rows; r++)
        {
            for (int k = pointers[r]; k < pointers[r + 1]; k++)
            {
                dense[r * columns + indices[k]] = values[k];
            }
        }

        return dense;
    }

    private static float[] Poisoned(int length) => Enumerable.Repeat(float.NaN, length).ToArray();

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 7, 13, 5)]
    [InlineData(3, 33, 70, 9)]
    [InlineData(4, 5, 200, 4)]
    public void Csr_OnTheSimulator_MatchesTheReference(int seed, int rows, int columns, int batch)
    {
        (int[] pointers, int[] indices, float[] values) = RandomCsr(rows, columns, seed);
        float[] x = RandomData.Gaussian(batch * columns, seed + 10);
        float[] wide = Poisoned(batch * rows), narrow = Poisoned(batch * rows);
        GpuSparseMatrixMultiply.MultiplyCsr(_gpu, rows, columns, pointers, indices, values, x, batch, wide);
        GpuSparseMatrixMultiply.MultiplyCsr(_gpu, rows, columns, pointers, indices.Select(i => (ushort)i).ToArray(), values, x, batch, narrow);
        AssertProduct(Dense(rows, columns, pointers, indices, values), rows, columns, x, batch, wide);
        Assert.Equal(wide, narrow);                                             // same sums, same order
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(32)]
    public void Csr_EveryLaneCount_MatchesTheReference(int lanes)
    {
        const int Rows = 9, Columns = 50, Batch = 6;
        (int[] pointers, int[] indices, float[] values) = RandomCsr(Rows, Columns, lanes);
        float[] x = RandomData.Gaussian(Batch * Columns, lanes + 1);
        Accelerator accelerator = _gpu.Accelerator;
        using MemoryBuffer1D<int, Stride1D.Dense> p = accelerator.Allocate1D(pointers);
        using MemoryBuffer1D<int, Stride1D.Dense> c = accelerator.Allocate1D(indices.Length == 0 ? [0] : indices);
        using MemoryBuffer1D<float, Stride1D.Dense> v = accelerator.Allocate1D(values.Length == 0 ? [0f] : values);
        using MemoryBuffer1D<float, Stride1D.Dense> xb = accelerator.Allocate1D(x);
        using MemoryBuffer1D<float, Stride1D.Dense> yb = accelerator.Allocate1D(Poisoned(Batch * Rows));
        GpuSparseMatrixMultiply.LaunchCsr<int, Int32Indices>(_gpu, s_testCsrKey, Rows, Columns, p.View,
            c.View.SubView(0, indices.Length), v.View.SubView(0, values.Length), xb.View, Batch, yb.View, lanes);
        AssertProduct(Dense(Rows, Columns, pointers, indices, values), Rows, Columns, x, Batch, yb.GetAsArray1D());
    }

    [Fact]
    public void Csr_DeviceViews_MatchTheHostOverload()
    {
        const int Rows = 12, Columns = 31, Batch = 3;
        (int[] pointers, int[] indices, float[] values) = RandomCsr(Rows, Columns, 5);
        float[] x = RandomData.Gaussian(Batch * Columns, 6);
        float[] host = new float[Batch * Rows];
        GpuSparseMatrixMultiply.MultiplyCsr(_gpu, Rows, Columns, pointers, indices, values, x, Batch, host);
        Accelerator accelerator = _gpu.Accelerator;
        using MemoryBuffer1D<int, Stride1D.Dense> p = accelerator.Allocate1D(pointers);
        using MemoryBuffer1D<ushort, Stride1D.Dense> c = accelerator.Allocate1D(indices.Select(i => (ushort)i).ToArray());
        using MemoryBuffer1D<float, Stride1D.Dense> v = accelerator.Allocate1D(values);
        using MemoryBuffer1D<float, Stride1D.Dense> xb = accelerator.Allocate1D(x);
        using MemoryBuffer1D<float, Stride1D.Dense> yb = accelerator.Allocate1D<float>(Batch * Rows);
        GpuSparseMatrixMultiply.MultiplyCsr(_gpu, Rows, Columns, p.View, c.View, v.View, xb.View, Batch, yb.View);
        Assert.Equal(host, yb.GetAsArray1D());
    }

    [Theory]
    [InlineData(1, 1, 1, 3, 4, 1)]
    [InlineData(2, 3, 5, 4, 3, 3)]
    [InlineData(3, 16, 16, 2, 3, 2)]
    [InlineData(4, 2, 8, 5, 1, 6)]
    public void Bsr_OnTheSimulator_MatchesTheReference(int seed, int blockRows, int blockColumns, int gridRows, int gridColumns, int batch)
    {
        // Blocks kept at random (40%) over a grid, each stored densely.
        var random = new Random(seed);
        int rows = gridRows * blockRows, columns = gridColumns * blockColumns, blockSize = blockRows * blockColumns;
        var pointers = new int[gridRows + 1];
        var blockIndices = new List<int>();
        var values = new List<float>();
        var dense = new float[rows * columns];
        for (int br = 0; br < gridRows; br++)
        {
            for (int bc = 0; bc < gridColumns; bc++)
            {
                if (random.NextDouble() >= 0.4)
                {
                    continue;
                }

                blockIndices.Add(bc);
                for (int e = 0; e < blockSize; e++)
                {
                    float v = (float)(random.NextDouble() * 2 - 1);
                    values.Add(v);
                    dense[(br * blockRows + e / blockColumns) * columns + bc * blockColumns + e % blockColumns] = v;
                }
            }

            pointers[br + 1] = blockIndices.Count;
        }

        float[] x = RandomData.Gaussian(batch * columns, seed + 10);
        float[] wide = Poisoned(batch * rows), narrow = Poisoned(batch * rows);
        GpuSparseMatrixMultiply.MultiplyBsr(_gpu, rows, columns, blockRows, blockColumns, pointers, blockIndices.ToArray(), values.ToArray(), x, batch, wide);
        GpuSparseMatrixMultiply.MultiplyBsr(_gpu, rows, columns, blockRows, blockColumns, pointers,
            blockIndices.Select(i => (ushort)i).ToArray(), values.ToArray(), x, batch, narrow);
        AssertProduct(dense, rows, columns, x, batch, wide);
        Assert.Equal(wide, narrow);
    }

    [Theory]
    [InlineData(1, 2, 4, 3, 5)]
    [InlineData(2, 1, 4, 4, 2)]
    [InlineData(3, 3, 5, 5, 3)]                // 3-bit fields that straddle bytes
    [InlineData(4, 4, 8, 1, 4)]
    [InlineData(5, 2, 16, 2, 2)]
    public void Decompress_OnTheSimulator_IsExact(int seed, int n, int m, int rows, int groups)
    {
        // Each group: n distinct in-group positions in increasing order, packed at ⌈log₂ m⌉ bits each.
        var random = new Random(seed);
        int columns = groups * m, width = 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(m - 1));
        float[] values = RandomData.Gaussian(rows * groups * n, seed);
        var indices = new byte[(values.Length * width + 7) / 8];
        var expected = new float[rows * columns];
        int k = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < groups; g++)
            {
                foreach (int position in Enumerable.Range(0, m).OrderBy(_ => random.Next()).Take(n).Order())
                {
                    long bit = (long)k * width;
                    int word = position << (int)(bit & 7);
                    indices[bit >> 3] |= (byte)word;
                    if ((word >> 8) != 0)
                    {
                        indices[(bit >> 3) + 1] |= (byte)(word >> 8);
                    }

                    expected[r * columns + g * m + position] = values[k++];
                }
            }
        }

        float[] actual = Poisoned(expected.Length);
        GpuSparseMatrixMultiply.DecompressSemiStructured(_gpu, rows, columns, values, indices, actual, n, m);
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void EmptyShapes_DoNothingOrWriteZeros()
    {
        float[] y = Poisoned(6);
        GpuSparseMatrixMultiply.MultiplyCsr(_gpu, 3, 0, new int[4], Array.Empty<int>(), [], [], 2, y);
        Assert.All(y, v => Assert.Equal(0f, v));
        GpuSparseMatrixMultiply.MultiplyCsr(_gpu, 0, 5, [0], Array.Empty<int>(), [], new float[10], 2, []);
        GpuSparseMatrixMultiply.MultiplyBsr(_gpu, 4, 4, 2, 2, [0, 0, 0], Array.Empty<int>(), [], [], 0, []);
        GpuSparseMatrixMultiply.DecompressSemiStructured(_gpu, 0, 8, [], [], []);
    }

    [Fact]
    public void MalformedLayouts_AreRejected()
    {
        float[] x = new float[6], y = new float[4];
        // Pointers that go back, pointers not ending at the count, a column out of range, short X.
        Assert.Throws<ArgumentException>("rowPointers", () => GpuSparseMatrixMultiply.MultiplyCsr(_gpu, 2, 3, [0, 2, 1], new int[1], new float[1], x, 2, y));
        Assert.Throws<ArgumentException>("rowPointers", () => GpuSparseMatrixMultiply.MultiplyCsr(_gpu, 2, 3, [0, 1, 1], new int[2], new float[2], x, 2, y));
        Assert.Throws<ArgumentException>("columnIndices", () => GpuSparseMatrixMultiply.MultiplyCsr(_gpu, 2, 3, [0, 1, 1], [3], new float[1], x, 2, y));
        Assert.Throws<ArgumentException>("x", () => GpuSparseMatrixMultiply.MultiplyCsr(_gpu, 2, 3, [0, 0, 0], Array.Empty<int>(), [], new float[5], 2, y));
        Assert.Throws<ArgumentException>("y", () => GpuSparseMatrixMultiply.MultiplyCsr(_gpu, 2, 3, [0, 0, 0], Array.Empty<int>(), [], x, 2, new float[3]));
        // Blocks that do not tile, a block column out of range, too few block values.
        Assert.Throws<ArgumentException>("blockRows", () => GpuSparseMatrixMultiply.MultiplyBsr(_gpu, 4, 6, 3, 3, [0, 0], Array.Empty<int>(), [], new float[12], 2, new float[8]));
        Assert.Throws<ArgumentException>("blockColumnIndices", () => GpuSparseMatrixMultiply.MultiplyBsr(_gpu, 2, 4, 2, 2, [0, 1], [2], new float[4], new float[8], 2, y));
        Assert.Throws<ArgumentException>("values", () => GpuSparseMatrixMultiply.MultiplyBsr(_gpu, 2, 4, 2, 2, [0, 1], [1], new float[3], new float[8], 2, y));
        // 2:4 indices out of order, columns not whole groups, n above m.
        Assert.Throws<ArgumentException>("indices", () => GpuSparseMatrixMultiply.DecompressSemiStructured(_gpu, 1, 4, new float[2], [0b01_10], new float[4]));
        Assert.Throws<ArgumentException>("columns", () => GpuSparseMatrixMultiply.DecompressSemiStructured(_gpu, 1, 6, new float[3], new byte[1], new float[6]));
        Assert.Throws<ArgumentOutOfRangeException>(() => GpuSparseMatrixMultiply.DecompressSemiStructured(_gpu, 1, 4, new float[5], new byte[2], new float[4], 5, 4));
    }

    /// <summary>CI has no GPU: compiling every kernel to PTX (ILGPU's CUDA backend, no device needed) catches code the
    /// simulator runs but the CUDA backend would refuse.</summary>
    [Fact]
    public void Kernels_CompileToPtx()
    {
        using Context context = Context.Create(builder => builder.Default());
        using var backend = new PTXBackend(context, CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, null!);
        var kernels = new (MethodInfo Method, bool Explicit)[]
        {
            (Method<ArrayView<int>>(SparseKernels.CsrMultiply<int, Int32Indices>), true),
            (Method<ArrayView<ushort>>(SparseKernels.CsrMultiply<ushort, UInt16Indices>), true),
            (((Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>)
                SparseKernels.BsrMultiply<int, Int32Indices>).Method, false),
            (((Action<Index1D, ArrayView<int>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>)
                SparseKernels.BsrMultiply<ushort, UInt16Indices>).Method, false),
            (((Action<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<float>, int, int, int, int>)SparseKernels.DecompressSemiStructured).Method, false),
        };
        foreach ((MethodInfo method, bool isExplicit) in kernels)
        {
            EntryPointDescription entry = isExplicit
                ? EntryPointDescription.FromExplicitlyGroupedKernel(method)
                : EntryPointDescription.FromImplicitlyGroupedKernel(method);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, default);
            Assert.Contains(".entry", compiled.PTXAssembly);
        }

        static MethodInfo Method<TIndexView>(Action<ArrayView<int>, TIndexView, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> kernel) =>
            kernel.Method;
    }
}
