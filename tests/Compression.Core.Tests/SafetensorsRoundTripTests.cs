using System.Runtime.InteropServices;
using Compression.Safetensors;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;

namespace Compression.Core.Tests;

public class SafetensorsRoundTripTests
{
    public static TheoryData<SafetensorsDType> AllDTypes() => new(Enum.GetValues<SafetensorsDType>());

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void EveryDType_RoundTripsBytesShapeAndMetadata(SafetensorsDType dtype)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var random = new Random((int)dtype + 1);
        long[][] shapes = [[3, 5], [7], [], [2, 0, 4], [2, 3, 4]];
        var payloads = new List<byte[]>();
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        writer.SetMetadata("note", "ünïcödé \"quoted\"");
        for (int i = 0; i < shapes.Length; i++)
        {
            long count = shapes[i].Aggregate(1L, (a, d) => a * d);
            var bytes = new byte[count * dtype.ElementSize()];
            random.NextBytes(bytes);
            payloads.Add(bytes);
            writer.Add($"t{i}.{dtype}", dtype, shapes[i], bytes);
        }

        string path = folder.File("m.safetensors");
        writer.Save(path);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(writer.Tensors, file.Tensors);
        Assert.Equal("ünïcödé \"quoted\"", file.Metadata["note"]);
        Assert.Equal(0, (8 + file.HeaderLength) % 8);                     // data section 8-byte aligned
        for (int i = 0; i < shapes.Length; i++)
        {
            SafetensorsTensorInfo info = file.GetInfo($"t{i}.{dtype}");
            Assert.Equal(dtype, info.DType);
            Assert.Equal(shapes[i], info.Shape);
            Assert.Equal(payloads[i], file.GetBytes(info.Name).ToArray());
        }
    }

    [Fact]
    public void ReadDense_ConvertsEveryDTypeToFloat32Exactly()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        float[] values = [0f, -0f, 1.5f, -2.75f, 100f, 0.0078125f];
        var writer = new SafetensorsWriter();
        writer.Add<float>("f32", SafetensorsDType.F32, [6], values);
        writer.Add<double>("f64", SafetensorsDType.F64, [2, 3], values.Select(v => (double)v).ToArray());
        writer.Add<Half>("f16", SafetensorsDType.F16, [6], values.Select(v => (Half)v).ToArray());
        writer.Add<BFloat16>("bf16", SafetensorsDType.BF16, [6], values.Select(v => (BFloat16)v).ToArray());
        writer.Add<sbyte>("i8", SafetensorsDType.I8, [3], new sbyte[] { -128, 0, 127 });
        writer.Add<long>("i64", SafetensorsDType.I64, [2], new long[] { -5, 1L << 40 });
        writer.Add<byte>("bool", SafetensorsDType.BOOL, [2], new byte[] { 0, 1 });
        writer.Add<byte>("e4m3", SafetensorsDType.F8_E4M3, [3], new byte[] { 0x38, 0x7E, 0xB8 });
        writer.Add<byte>("e5m2", SafetensorsDType.F8_E5M2, [2], new byte[] { 0x3C, 0x7B });
        string path = folder.File("m.safetensors");
        writer.Save(path);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        foreach (string name in new[] { "f32", "f64", "f16", "bf16" })
        {
            Assert.Equal(values, file.ReadDense(name).Span.ToArray());
        }

        Assert.Equal([2, 3], file.ReadDense("f64").Shape.ToArray());
        Assert.Equal([-128f, 0f, 127f], file.ReadDense("i8").Span.ToArray());
        Assert.Equal([-5f, 1099511627776f], file.ReadDense("i64").Span.ToArray());
        Assert.Equal([0f, 1f], file.ReadDense("bool").Span.ToArray());
        Assert.Equal([1f, 448f, -1f], file.ReadDense("e4m3").Span.ToArray());
        Assert.Equal([1f, 57344f], file.ReadDense("e5m2").Span.ToArray());
    }

    [Fact]
    public void DenseTensor_StoredAsHalfOrBFloat16_ReadsBackRounded()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        DenseTensor w = RandomData.GaussianMatrix(33, 17, seed: 4);
        var writer = new SafetensorsWriter();
        writer.Add("w32", w);
        writer.Add("w16", w, SafetensorsDType.F16);
        writer.Add("wbf", w, SafetensorsDType.BF16);
        Assert.Throws<ArgumentException>("storeAs", () => writer.Add("bad", w, SafetensorsDType.I8));
        string path = folder.File("m.safetensors");
        writer.Save(path);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.True(file.ReadDense("w32").BitwiseEquals(w));
        var halves = new Half[w.Length];
        w.CopyTo(halves);
        Assert.Equal(halves.Select(h => (float)h).ToArray(), file.ReadDense("w16").Span.ToArray());
        var bf = new BFloat16[w.Length];
        w.CopyTo(bf);
        Assert.Equal(MemoryMarshal.AsBytes(bf.AsSpan()).ToArray(), file.GetBytes("wbf").ToArray());
    }

    [Property(MaxTest = 30)]
    public bool AnyTensorSet_RoundTrips(int seed, PositiveInt count)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var random = new Random(seed);
        SafetensorsDType[] dtypes = Enum.GetValues<SafetensorsDType>();
        var writer = new SafetensorsWriter();
        var expected = new Dictionary<string, byte[]>();
        for (int i = 0; i < count.Get % 12 + 1; i++)
        {
            SafetensorsDType dtype = dtypes[random.Next(dtypes.Length)];
            long[] shape = Enumerable.Range(0, random.Next(0, 4)).Select(_ => (long)random.Next(0, 6)).ToArray();
            var bytes = new byte[shape.Aggregate(1L, (a, d) => a * d) * dtype.ElementSize()];
            random.NextBytes(bytes);
            string name = $"layer.{i}.{random.Next()}";
            writer.Add(name, dtype, shape, bytes);
            expected[name] = bytes;
        }

        string path = folder.File("m.safetensors");
        writer.Save(path);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        return file.Tensors.SequenceEqual(writer.Tensors) && expected.All(e => file.GetBytes(e.Key).SequenceEqual(e.Value));
    }

    [Fact]
    public void Sharded_RoundTrips_ThroughTheIndex()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        var tensors = new Dictionary<string, DenseTensor>();
        for (int i = 0; i < 7; i++)
        {
            DenseTensor t = RandomData.GaussianMatrix(10 + i, 8, seed: i);
            tensors[$"model.layers.{i}.weight"] = t;
            writer.Add($"model.layers.{i}.weight", t);
        }

        string index = writer.SaveSharded(folder.Path, maxShardBytes: 300);
        Assert.Equal(folder.File(SafetensorsCheckpoint.IndexFileName), index);
        Assert.Equal(7, Directory.GetFiles(folder.Path, "model-*-of-00007.safetensors").Length);   // every tensor exceeds 300 bytes: one shard each

        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
        Assert.Equal(7, checkpoint.Files.Count);
        Assert.Equal(tensors.Keys.Order(), checkpoint.Tensors.Select(t => t.Name).Order());
        Assert.Equal("pt", checkpoint.Metadata["format"]);
        Assert.Equal(tensors.Values.Sum(t => 4L * t.Length).ToString(System.Globalization.CultureInfo.InvariantCulture),
            checkpoint.Metadata["total_size"]);
        foreach ((string name, DenseTensor t) in tensors)
        {
            Assert.True(checkpoint.ReadDense(name).BitwiseEquals(t));
        }
    }

    [Fact]
    public void Checkpoint_OpensSingleFiles_ByFolderOrPath()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        writer.Add("a", RandomData.GaussianMatrix(2, 2, seed: 1));
        writer.Save(folder.File("model.safetensors"));
        using (SafetensorsCheckpoint byFolder = SafetensorsCheckpoint.Open(folder.Path))
        {
            Assert.True(byFolder.Contains("a"));
        }

        using SafetensorsCheckpoint byFile = SafetensorsCheckpoint.Open(folder.File("model.safetensors"));
        Assert.Single(byFile.Tensors);
        Assert.Throws<KeyNotFoundException>(() => byFile.ReadDense("b"));
    }

    [Fact]
    public void Save_IsAtomic_AFailedWriteLeavesThePreviousFileIntact()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string path = folder.File("m.safetensors");
        var good = new SafetensorsWriter();
        good.Add("a", RandomData.GaussianMatrix(3, 3, seed: 1));
        good.Save(path);
        byte[] before = File.ReadAllBytes(path);

        var bad = new SafetensorsWriter();
        bad.Add("a", RandomData.GaussianMatrix(3, 3, seed: 2));
        bad.AddDeferred("b", SafetensorsDType.F32, [4], stream => stream.Write(new byte[8]));   // 8 bytes, 16 promised
        Assert.Throws<InvalidDataException>(() => bad.Save(path));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(folder.Path));                                        // no temporary left
    }

    [Fact]
    public void Writer_RejectsBadTensors()
    {
        var writer = new SafetensorsWriter();
        writer.Add<float>("a", SafetensorsDType.F32, [2], new float[2]);
        Assert.Throws<ArgumentException>("name", () => writer.Add<float>("a", SafetensorsDType.F32, [2], new float[2]));
        Assert.Throws<ArgumentException>("name", () => writer.Add<float>("__metadata__", SafetensorsDType.F32, [1], new float[1]));
        Assert.Throws<ArgumentException>("data", () => writer.Add<float>("b", SafetensorsDType.F32, [3], new float[2]));
        Assert.Throws<ArgumentException>("data", () => writer.Add<float>("c", SafetensorsDType.F16, [2], new float[2]));
        Assert.Throws<ArgumentException>("shape", () => writer.Add("d", SafetensorsDType.U8, [-1], ReadOnlyMemory<byte>.Empty));
        Assert.Throws<ArgumentException>("data", () => writer.Add("e", SafetensorsDType.U8, [3], new byte[2]));
        Assert.Throws<ArgumentException>("shape", () => writer.Add("f", SafetensorsDType.F64, [1L << 40, 1L << 40], ReadOnlyMemory<byte>.Empty));
    }

    [Fact]
    public void DeferredTensors_StreamWithoutBeingHeld()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        int calls = 0;
        writer.AddDeferred("big", SafetensorsDType.U8, [3, 1000], stream =>
        {
            calls++;
            for (int i = 0; i < 3; i++)
            {
                stream.Write(Enumerable.Repeat((byte)i, 1000).ToArray());
            }
        });
        writer.Save(folder.File("m.safetensors"));
        Assert.Equal(1, calls);
        using SafetensorsFile file = SafetensorsFile.Open(folder.File("m.safetensors"));
        Assert.Equal(2, file.GetBytes("big", 2500, 10)[0]);
        using var copy = new MemoryStream();
        file.CopyTo("big", copy);
        Assert.Equal(3000, copy.Length);
        Assert.Throws<ArgumentOutOfRangeException>("offset", () => file.GetBytes("big", 2995, 10).ToArray());
    }
}
