using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

public class TritPlaneTests
{
    private static double SquaredError(DenseTensor w, CompressedTensor c)
    {
        float[] r = c.Decompress().Span.ToArray();
        return w.Span.ToArray().Select((v, i) => (double)(v - r[i]) * (v - r[i])).Sum();
    }

    [Fact]
    public void TwoPlanes_AreNeverWorseThanOneTwnPlane_AndMoreRoundsNeverHurt()
    {
        DenseTensor w = RandomData.GaussianMatrix(24, 96, seed: 5);
        double twn = SquaredError(w, new RtnOptions { Format = NumberFormat.TernaryThreshold }.CreateCompressor().Quantize(w));
        double one = SquaredError(w, new TritPlaneOptions { Planes = 1 }.CreateCompressor().Compress(w, CompressionContext.Default));
        double twoShort = SquaredError(w, new TritPlaneOptions { MaxIterations = 1 }.CreateCompressor().Compress(w, CompressionContext.Default));
        double two = SquaredError(w, TritPlaneOptions.Default.CreateCompressor().Compress(w, CompressionContext.Default));
        Assert.True(one <= twn * (1 + 1e-6), $"one plane {one} vs TWN {twn}");
        Assert.True(two <= twoShort * (1 + 1e-6), $"20 rounds {two} vs 1 round {twoShort}");
        // Two planes of a Gaussian recover far more than one: the seeds' point about PTQTP.
        Assert.True(two < 0.5 * twn, $"two planes {two} vs TWN {twn}");
    }

    [Fact]
    public void RepresentableMatrix_IsExact()
    {
        var random = new Random(3);
        DenseTensor w = DenseTensor.FromValues(Enumerable.Range(0, 8 * 40).Select(_ => 0.5f * (random.Next(3) - 1)).ToArray(), 8, 40);
        CompressedTensor c = new TritPlaneOptions { Planes = 1 }.CreateCompressor().Compress(w, CompressionContext.Default);
        Assert.True(c.Decompress().BitwiseEquals(w) || SquaredError(w, c) == 0);
    }

    [Fact]
    public void Serialization_RoundTrips_AndStorageIsCounted()
    {
        DenseTensor w = RandomData.GaussianMatrix(6, 33, seed: 9);
        w.Row(2).Clear();
        var c = Assert.IsType<TritPlaneTensor>(TritPlaneOptions.Default.CreateCompressor().Compress(w, CompressionContext.Default));
        Assert.All(c.Decompress().Row(2).ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(2 * (8L * 6 * 7 + 32 * 6), c.StorageBits);                   // ⌈33/5⌉ = 7 bytes per row and plane

        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        CompressedTensorSerializer serializer = TritPlaneTensor.Register(CompressedTensorSerializer.Default);
        var writer = new SafetensorsWriter();
        serializer.Write(writer, "w", c);
        writer.Save(folder.File("t.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("t.safetensors"));
        CompressedTensor back = serializer.Read(checkpoint, "w");
        Assert.True(back.Decompress().BitwiseEquals(c.Decompress()));
        Assert.Equal(c.StorageBits, back.StorageBits);
    }

    [Fact]
    public void BadInput_IsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>("Planes", () => new TritPlaneOptions { Planes = 0 });
        Assert.Throws<ArgumentOutOfRangeException>("MaxIterations", () => new TritPlaneOptions { MaxIterations = 0 });
        DenseTensor w = RandomData.GaussianMatrix(2, 8, seed: 1);
        w[0, 0] = float.PositiveInfinity;
        Assert.Throws<ArgumentException>("weight", () => TritPlaneOptions.Default.CreateCompressor().Compress(w, CompressionContext.Default));
    }
}
