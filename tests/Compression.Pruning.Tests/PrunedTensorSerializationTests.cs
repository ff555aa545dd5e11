using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Pruning.Tests;

/// <summary>Every pruner's result survives a safetensors round trip bit for bit.</summary>
public class PrunedTensorSerializationTests
{
    [Fact]
    public void PrunedTensors_RoundTripThroughTheSerializer()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        CompressedTensorSerializer serializer = PrunedTensor.Register(CompressedTensorSerializer.Default);
        DenseTensor w = RandomData.GaussianMatrix(16, 24, seed: 9);
        var tensors = new Dictionary<string, PrunedTensor>
        {
            ["magnitude"] = new MagnitudePruningOptions { Sparsity = 0.37 }.CreateCompressor().Prune(w),
            ["nm"] = NofMOptions.TwoOfFour.CreateCompressor().Prune(w),
            ["block"] = new BlockSparsityOptions { BlockRows = 4, BlockColumns = 8 }.CreateCompressor().Prune(w),
            ["wanda"] = new WandaOptions().CreateCompressor().Prune(w, PruningReference.HessianOf(RandomData.GaussianMatrix(10, 24, seed: 10))),
            ["structured"] = new StructuredPruningOptions { Sparsity = 0.25 }.CreateCompressor().Select(w).Pruned,
            ["empty"] = new MagnitudePruningOptions().CreateCompressor().Prune(new DenseTensor(0, 5)),
        };

        var writer = new SafetensorsWriter();
        foreach ((string name, PrunedTensor tensor) in tensors)
        {
            serializer.Write(writer, name, tensor);
        }

        writer.Save(folder.File("pruned.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.File("pruned.safetensors"));
        foreach ((string name, PrunedTensor original) in tensors)
        {
            PrunedTensor read = Assert.IsType<PrunedTensor>(serializer.Read(checkpoint, name));
            Assert.Equal(original.StorageBits, read.StorageBits);
            Assert.Equal(original.Mask.ToBytes(), read.Mask.ToBytes());
            Assert.True(read.Decompress().BitwiseEquals(original.Decompress()), name);
            Assert.Null(read.Report);
        }
    }
}
