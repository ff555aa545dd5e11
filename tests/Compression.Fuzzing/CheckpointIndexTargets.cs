// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Safetensors;
using Compression.Tensors;

namespace Compression.Fuzzing;

/// <summary>
/// The sharded-checkpoint reader (<see cref="SafetensorsCheckpoint.Open"/> on a folder with
/// <c>model.safetensors.index.json</c>): fuzzed index over two fixed valid shards, or a fixed index over one fixed and
/// one fuzzed shard. Documented: <see cref="InvalidDataException"/>, and <see cref="FileNotFoundException"/> when the
/// index names a shard that does not exist.
/// </summary>
public static class CheckpointIndexTargets
{
    /// <summary>The first fixed shard's file name.</summary>
    public const string FirstShard = "model-00001-of-00002.safetensors";

    /// <summary>The second shard's file name (fixed for <see cref="Index"/>, fuzzed by <see cref="Shard"/>).</summary>
    public const string SecondShard = "model-00002-of-00002.safetensors";

    private static readonly byte[] FirstShardBytes = BuildShard(("a.weight", 2, 3), ("a.bias", 3, 1));
    private static readonly byte[] SecondShardBytes = BuildShard(("b.weight", 4, 2), ("b.bias", 1, 1));

    /// <summary>The index of the two fixed shards (the valid seed of <see cref="Index"/> and the fixed index of <see cref="Shard"/>).</summary>
    public static byte[] ValidIndex { get; } = System.Text.Encoding.UTF8.GetBytes(
        "{\"metadata\": {\"total_size\": 104}, \"weight_map\": {" +
        $"\"a.weight\": \"{FirstShard}\", \"a.bias\": \"{FirstShard}\", \"b.weight\": \"{SecondShard}\", \"b.bias\": \"{SecondShard}\"" + "}}");

    /// <summary>The fixed second shard (a seed of <see cref="Shard"/>).</summary>
    public static ReadOnlySpan<byte> ValidSecondShard => SecondShardBytes;

    /// <summary>The input is the index JSON; the shards are fixed and valid.</summary>
    public static void Index(ReadOnlySpan<byte> input)
    {
        string folder = Folder("index", withSecondShard: true);
        FuzzScratch.WithFile(input, SafetensorsCheckpoint.IndexFileName, _ => OpenAndRead(folder), folder);
    }

    /// <summary>The input is the second shard; the index and the first shard are fixed and valid.</summary>
    public static void Shard(ReadOnlySpan<byte> input)
    {
        string folder = Folder("shard", withSecondShard: false);
        FuzzScratch.WithFile(input, SecondShard, _ => OpenAndRead(folder), folder);
    }

    private static void OpenAndRead(string folder)
    {
        SafetensorsCheckpoint checkpoint;
        try
        {
            checkpoint = SafetensorsCheckpoint.Open(folder);
        }
        catch (Exception e) when (e is InvalidDataException || e.GetType() == typeof(FileNotFoundException))
        {
            return;
        }

        using (checkpoint)
        {
            foreach (SafetensorsTensorInfo info in checkpoint.Tensors)
            {
                _ = checkpoint.GetBytes(info.Name);
                try
                {
                    _ = checkpoint.ReadDense(info.Name);
                }
                catch (NotSupportedException)
                {
                }
            }
        }
    }

    /// <summary>A subfolder of this thread's scratch folder holding the fixed first shard, the fixed second one when
    /// asked, else the fixed index (the fuzzed file is written beside them by the caller).</summary>
    private static string Folder(string name, bool withSecondShard)
    {
        string folder = FuzzScratch.Subfolder(name);
        string first = Path.Combine(folder, FirstShard);
        if (!System.IO.File.Exists(first))
        {
            System.IO.File.WriteAllBytes(first, FirstShardBytes);
            System.IO.File.WriteAllBytes(Path.Combine(folder, withSecondShard ? SecondShard : SafetensorsCheckpoint.IndexFileName),
                withSecondShard ? SecondShardBytes : ValidIndex);
        }

        return folder;
    }

    private static byte[] BuildShard(params (string Name, int Rows, int Columns)[] tensors)
    {
        var writer = new SafetensorsWriter();
        int value = 0;
        foreach ((string name, int rows, int columns) in tensors)
        {
            var tensor = new DenseTensor(rows, columns);
            for (int i = 0; i < tensor.Span.Length; i++)
            {
                tensor.Span[i] = 0.25f * value++;
            }

            writer.Add(name, tensor);
        }

        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        return stream.ToArray();
    }
}
