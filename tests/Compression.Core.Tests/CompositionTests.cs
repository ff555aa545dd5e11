using Compression.Calibration;
using Compression.Composition;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Core.Tests;

public class CompositionTests
{
    private static readonly CompressedTensorSerializer Serializer = CompressedTensorSerializer.Default
        .WithKind("test-masked", MaskedTensor.Read)
        .WithKind("test-grid", GridTensor.Read)
        .WithKind("test-rank1", RankOneTensor.Read);

    private static double Error(DenseTensor w, CompressedTensor c)
    {
        float[] r = c.Decompress().Span.ToArray();
        return Math.Sqrt(w.Span.ToArray().Select((v, i) => (double)(v - r[i]) * (v - r[i])).Sum());
    }

    [Fact]
    public void PruneThenQuantize_KeepsTheMaskAndPutsSurvivorsOnTheGrid()
    {
        DenseTensor w = RandomData.GaussianMatrix(12, 20, seed: 7);
        float[] before = w.Span.ToArray();
        var chain = new ChainedCompressor(new KeepLargestPruner(keep: 0.5), new GridQuantizer(step: 0.25f));

        CompressedTensor result = chain.Compress(w, CompressionContext.Default);

        Assert.Equal(before, w.Span.ToArray());                               // input untouched
        Assert.Equal("test-keep-largest+test-grid", chain.Name);
        SparsityMask mask = Assert.IsType<SparsityMask>(result.SparsityMask);
        Assert.Equal(120, mask.KeptCount);
        DenseTensor dense = result.Decompress();
        for (int i = 0; i < 12; i++)
        {
            for (int j = 0; j < 20; j++)
            {
                float v = dense[i, j];
                Assert.True(mask.IsKept(i, j) || v == 0, $"pruned ({i}, {j}) reads {v}");
                Assert.Equal(0, v / 0.25f % 1);                                  // on the grid
                if (mask.IsKept(i, j))
                {
                    Assert.True(Math.Abs(v - w[i, j]) <= 0.125f);
                }
            }
        }
    }

    [Fact]
    public void QuantizeThenLowRankCorrection_ReducesTheError_AndAddsItsStorage()
    {
        // A matrix with a strong rank-1 component plus noise: the coarse grid misses much of it, the rank-1
        // correction of the residual recovers part of that.
        DenseTensor w = RandomData.GaussianMatrix(16, 24, seed: 3, standardDeviation: 0.05f);
        float[] a = RandomData.Gaussian(16, seed: 4), b = RandomData.Gaussian(24, seed: 5);
        for (int i = 0; i < 16; i++)
        {
            for (int j = 0; j < 24; j++)
            {
                w[i, j] += 0.3f * a[i] * b[j];
            }
        }

        var quantizer = new GridQuantizer(step: 0.5f);
        CompressedTensor quantized = quantizer.Compress(w, CompressionContext.Default);
        var residual = new ResidualCompressor(quantizer, new RankOneFactorizer());
        CompressedTensor corrected = residual.Compress(w, CompressionContext.Default);

        ResidualTensor sum = Assert.IsType<ResidualTensor>(corrected);
        Assert.Equal(quantized.StorageBits + 32L * (16 + 24), corrected.StorageBits);
        // The rank-1 part is the best rank-1 fit of the residual R (power iteration), so by Eckart–Young the error
        // drops from ‖R‖ to sqrt(‖R‖² − σ₁²): strictly, as R is not zero.
        Assert.True(Error(w, corrected) < Error(w, quantized), $"{Error(w, corrected)} vs {Error(w, quantized)}");
        Assert.Equal(quantized.Decompress().Span.ToArray(), sum.Main.Decompress().Span.ToArray());
    }

    [Fact]
    public void Composites_SerializeAndReadBackBitForBit()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        DenseTensor w = RandomData.GaussianMatrix(9, 11, seed: 1);
        CompressedTensor residual = new ResidualCompressor(
            new ChainedCompressor(new KeepLargestPruner(0.7), new GridQuantizer(0.125f)), new RankOneFactorizer())
            .Compress(w, CompressionContext.Default);
        CompressedTensor masked = new KeepLargestPruner(0.3).Compress(w, CompressionContext.Default);
        var plain = new UncompressedTensor(w);

        var writer = new SafetensorsWriter();
        Serializer.Write(writer, "layers.0.q_proj", residual);
        Serializer.Write(writer, "layers.0.k_proj", masked);
        Serializer.Write(writer, "layers.0.v_proj", plain);
        writer.Save(folder.File("c.safetensors"));

        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("c.safetensors"));
        foreach ((string name, CompressedTensor original) in new[] { ("layers.0.q_proj", residual), ("layers.0.k_proj", masked), ("layers.0.v_proj", (CompressedTensor)plain) })
        {
            CompressedTensor read = Serializer.Read(checkpoint, name);
            Assert.Equal(original.GetType(), read.GetType());
            Assert.Equal(original.StorageBits, read.StorageBits);
            Assert.True(read.Decompress().BitwiseEquals(original.Decompress()));
        }

        Assert.Equal(32.0, plain.BitsPerWeight);
        InvalidDataException unknown = Assert.Throws<InvalidDataException>(() => CompressedTensorSerializer.Default.Read(checkpoint, "layers.0.k_proj"));
        Assert.Contains("test-masked", unknown.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => Serializer.Read(checkpoint, "layers.0.o_proj"));
        Assert.Throws<ArgumentException>("kind", () => Serializer.WithKind("test-grid", GridTensor.Read));
    }

    [Fact]
    public void Requirements_AreTheUnionOfTheStages()
    {
        Assert.Equal(CalibrationRequirements.InputHessian, new ChainedCompressor(new KeepLargestPruner(0.5), new NeedsHessian()).Requirements);
        Assert.Equal(CalibrationRequirements.InputHessian, new ResidualCompressor(new NeedsHessian(), new RankOneFactorizer()).Requirements);
        Assert.Equal(CalibrationRequirements.None, new ResidualCompressor(new GridQuantizer(1), new RankOneFactorizer()).Requirements);
    }

    [Fact]
    public void Validate_RejectsBadWeightsAndMissingStatistics()
    {
        var compressor = new NeedsHessian();
        DenseTensor w = RandomData.GaussianMatrix(4, 6, seed: 2);
        var hessian = new HessianAccumulator(6);

        ArgumentException missing = Assert.Throws<ArgumentException>("context", () => compressor.Compress(w, CompressionContext.Default));
        Assert.Contains("InputHessian", missing.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>("context", () => compressor.Compress(w, new CompressionContext { InputHessian = hessian }));   // no samples
        hessian.Add(RandomData.GaussianMatrix(3, 6, seed: 3));
        Assert.IsType<UncompressedTensor>(compressor.Compress(w, new CompressionContext { InputHessian = hessian }));
        Assert.Throws<ArgumentException>("context", () => compressor.Compress(RandomData.GaussianMatrix(4, 5, seed: 2), new CompressionContext { InputHessian = hessian }));

        DenseTensor nan = w.Clone();
        nan[2, 3] = float.NaN;
        ArgumentException e = Assert.Throws<ArgumentException>("weight", () => new GridQuantizer(1).Compress(nan, CompressionContext.Default));
        Assert.Contains("(2, 3)", e.Message, StringComparison.Ordinal);
        DenseTensor inf = w.Clone();
        inf[0, 0] = float.NegativeInfinity;
        Assert.Throws<ArgumentException>("weight", () => new GridQuantizer(1).Compress(inf, CompressionContext.Default));
        Assert.Throws<ArgumentException>("weight", () => new GridQuantizer(1).Compress(new DenseTensor(2, 3, 4), CompressionContext.Default));
        Assert.Throws<ArgumentNullException>("weight", () => new GridQuantizer(1).Compress(null!, CompressionContext.Default));
    }

    [Fact]
    public void EmptyAndZeroMatrices_AreHandled()
    {
        CompressedTensor empty = new GridQuantizer(1).Compress(new DenseTensor(0, 5), CompressionContext.Default);
        Assert.Equal((0, 5, 0.0), (empty.Rows, empty.Columns, empty.BitsPerWeight));
        CompressedTensor zeros = new ChainedCompressor(new KeepLargestPruner(0.5), new GridQuantizer(1)).Compress(new DenseTensor(3, 3), CompressionContext.Default);
        Assert.All(zeros.Decompress().Span.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Cancellation_IsHonoured()
    {
        using var source = new CancellationTokenSource();
        source.Cancel();
        var context = new CompressionContext { CancellationToken = source.Token };
        Assert.Throws<OperationCanceledException>(() => new ChainedCompressor(new GridQuantizer(1), new GridQuantizer(2))
            .Compress(RandomData.GaussianMatrix(2, 2, seed: 1), context));
    }

    [Fact]
    public void DecompressTo_ChecksTheDestination()
    {
        var plain = new UncompressedTensor(RandomData.GaussianMatrix(2, 3, seed: 1));
        Assert.Throws<ArgumentException>("destination", () => plain.DecompressTo(new float[5]));
        Assert.Throws<ArgumentException>("correction", () => new ResidualTensor(plain, new UncompressedTensor(new DenseTensor(3, 2))));
        Assert.Throws<ArgumentNullException>("Logger", () => new CompressionContext { Logger = null! });
    }
}
