using Compression.Safetensors;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Core.Tests;

/// <summary><see cref="SafetensorsWriter.SaveSharded"/> over an earlier sharded save: the folder ends up holding exactly
/// the new checkpoint (old shards the new index does not name are deleted), with no temporary files left.</summary>
public class ShardedSaveTests
{
    private static (SafetensorsWriter Writer, Dictionary<string, DenseTensor> Tensors) Build(int count, int seed)
    {
        var writer = new SafetensorsWriter();
        var tensors = new Dictionary<string, DenseTensor>();
        for (int i = 0; i < count; i++)
        {
            DenseTensor t = RandomData.GaussianMatrix(10, 8, seed: seed + i);
            tensors[$"model.layers.{i}.weight"] = t;
            writer.Add($"model.layers.{i}.weight", t);
        }

        return (writer, tensors);
    }

    [Fact]
    public void SaveSharded_OverAnEarlierSaveWithMoreShards_LeavesOnlyTheNewCheckpoint()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        File.WriteAllText(folder.File("other-00001-of-00001.safetensors"), "not ours");      // another base name: kept
        Build(7, seed: 1).Writer.SaveSharded(folder.Path, maxShardBytes: 300);
        Assert.Equal(7, Directory.GetFiles(folder.Path, "model-*-of-00007.safetensors").Length);

        (SafetensorsWriter writer, Dictionary<string, DenseTensor> tensors) = Build(3, seed: 100);
        writer.SaveSharded(folder.Path, maxShardBytes: 1000);

        string[] files = Directory.GetFiles(folder.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        Assert.Equal(
            ["model-00001-of-00001.safetensors", "model.safetensors.index.json", "other-00001-of-00001.safetensors"],
            files);
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
        Assert.Equal(tensors.Keys.Order(), checkpoint.Tensors.Select(t => t.Name).Order());
        foreach ((string name, DenseTensor t) in tensors)
        {
            Assert.True(checkpoint.ReadDense(name).BitwiseEquals(t));
        }
    }

    [Fact]
    public void SaveSharded_WhenATensorFailsToWrite_LeavesThePreviousCheckpointAndNoTemporaryFiles()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        (SafetensorsWriter first, Dictionary<string, DenseTensor> tensors) = Build(4, seed: 7);
        first.SaveSharded(folder.Path, maxShardBytes: 300);
        Dictionary<string, byte[]> before = Directory.GetFiles(folder.Path).ToDictionary(f => f, File.ReadAllBytes);

        var failing = new SafetensorsWriter();
        failing.Add("model.layers.0.weight", RandomData.GaussianMatrix(10, 8, seed: 50));
        failing.AddDeferred("model.layers.1.weight", SafetensorsDType.F32, [10, 8], _ => throw new IOException("disk gone"));
        Assert.Throws<IOException>(() => failing.SaveSharded(folder.Path, maxShardBytes: 300));

        Assert.Equal(before.Keys.Order(), Directory.GetFiles(folder.Path).Order());
        Assert.All(before, pair => Assert.Equal(pair.Value, File.ReadAllBytes(pair.Key)));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
        Assert.True(checkpoint.ReadDense("model.layers.0.weight").BitwiseEquals(tensors["model.layers.0.weight"]));
    }
}
