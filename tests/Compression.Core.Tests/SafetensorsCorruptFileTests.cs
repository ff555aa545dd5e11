using System.Buffers.Binary;
using System.Text;
using Compression.Safetensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;

namespace Compression.Core.Tests;

/// <summary>Every malformed file must give <see cref="InvalidDataException"/> with a reason, never another exception.</summary>
public class SafetensorsCorruptFileTests
{
    private static byte[] File(string header, int dataBytes) => File(Encoding.UTF8.GetBytes(header), new byte[dataBytes]);

    private static byte[] File(byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    private static byte[] WithLength(ulong headerLength, byte[] rest)
    {
        var bytes = new byte[8 + rest.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength);
        rest.CopyTo(bytes, 8);
        return bytes;
    }

    private static byte[] ValidFile()
    {
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        writer.Add("a", RandomData.GaussianMatrix(3, 4, seed: 1));
        writer.Add<Half>("b", SafetensorsDType.F16, [5], new Half[5]);
        writer.Add<long>("c", SafetensorsDType.I64, [2], new long[] { 1, 2 });
        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        return stream.ToArray();
    }

    public static TheoryData<string, byte[], string> Cases()
    {
        byte[] valid = ValidFile();
        return new TheoryData<string, byte[], string>
        {
            { "empty file", [], "shorter than the 8-byte header length" },
            { "seven bytes", new byte[7], "shorter than the 8-byte header length" },
            { "header length zero", WithLength(0, new byte[16]), "header length is 0" },
            { "header length beyond the file", WithLength(1000, Encoding.UTF8.GetBytes("{}")), "truncated" },
            { "header length absurd", WithLength(ulong.MaxValue, new byte[16]), "must lie in" },
            { "header not JSON", File("{\"a\": [1, 2", 0), "not well-formed JSON" },
            { "header invalid UTF-8", File([0x7B, 0xFF, 0xFE, 0x7D], []), "not valid UTF-8" },
            { "invalid UTF-8 inside a string", File([.. Encoding.UTF8.GetBytes("{\"__metadata__\":{\"k\":\""), 0xF4, 0x90, .. Encoding.UTF8.GetBytes("\"}}")], []), "not valid UTF-8" },
            { "header is an array", File("[1, 2, 3]", 0), "not an object" },
            { "tensor entry not an object", File("{\"a\": 5}", 0), "not an object" },
            { "unknown dtype", File("{\"a\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype 'F12'" },
            { "missing dtype", File("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "no string \"dtype\"" },
            { "negative dimension", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4), "non-negative integers" },
            { "fractional dimension", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,10]}}", 10), "non-negative integers" },
            { "shape overflows", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],\"data_offsets\":[0,4]}}", 4), "data_offsets span" },
            { "missing data_offsets", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "no \"data_offsets\"" },
            { "offsets past the data", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4), "outside the data section" },
            { "offsets reversed", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4), "outside the data section" },
            { "bytes do not match dtype and shape", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "data_offsets span 8 bytes" },
            { "overlapping tensors", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "overlap" },
            { "hole between tensors", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12), "unclaimed bytes" },
            { "trailing bytes", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9), "cover only 4" },
            { "duplicate tensor", File("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2), "appears twice" },
            { "metadata value not a string", File("{\"__metadata__\":{\"k\":1}}", 0), "not a string" },
            { "metadata not an object", File("{\"__metadata__\":[\"k\"]}", 0), "not an object of strings" },
            { "truncated in the data section", valid[..^5], "outside the data section" },
            { "truncated in the header", valid[..40], "truncated" },
            { "nesting bomb", File(new string('[', 5000) + new string(']', 5000), 0), "not well-formed JSON" },
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CorruptFile_ThrowsInvalidDataException_WithTheReason(string description, byte[] bytes, string reason)
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string path = folder.File("bad.safetensors");
        System.IO.File.WriteAllBytes(path, bytes);
        InvalidDataException e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Contains("bad.safetensors", e.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(description));
    }

    [Fact]
    public void MissingFile_ThrowsFileNotFound()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(folder.File("absent.safetensors")));
        Assert.Throws<FileNotFoundException>(() => SafetensorsCheckpoint.Open(folder.File("absent.safetensors")));
        Assert.Throws<FileNotFoundException>(() => SafetensorsCheckpoint.Open(folder.Path));
    }

    /// <summary>Random damage to a valid file: opening and reading everything either works or says InvalidData.</summary>
    [Property(MaxTest = 300)]
    public bool RandomlyDamagedFile_OpensCleanlyOrThrowsInvalidData(int seed)
    {
        byte[] bytes = ValidFile();
        var random = new Random(seed);
        switch (random.Next(3))
        {
            case 0:
                for (int i = random.Next(1, 4); i > 0; i--)
                {
                    bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                }

                break;
            case 1:
                bytes = bytes[..random.Next(bytes.Length)];
                break;
            default:
                bytes[random.Next(8, 8 + 40)] ^= (byte)(1 << random.Next(8));     // a bit flip in the header
                break;
        }

        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string path = folder.File("fuzz.safetensors");
        System.IO.File.WriteAllBytes(path, bytes);
        try
        {
            using SafetensorsFile file = SafetensorsFile.Open(path);
            foreach (SafetensorsTensorInfo info in file.Tensors)
            {
                _ = file.GetBytes(info.Name).ToArray();
                if (info.ElementCount < 1_000_000)
                {
                    _ = file.ReadDense(info.Name);
                }
            }

            return true;
        }
        catch (InvalidDataException)
        {
            return true;
        }
    }

    [Fact]
    public void BrokenIndex_GivesClearErrors()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        writer.Add<float>("w", SafetensorsDType.F32, [2], new float[2]);
        writer.Save(folder.File("shard-1.safetensors"));
        string index = folder.File(SafetensorsCheckpoint.IndexFileName);

        void Expect<TException>(string json, string reason)
            where TException : Exception
        {
            System.IO.File.WriteAllText(index, json);
            TException e = Assert.Throws<TException>(() => SafetensorsCheckpoint.Open(folder.Path).Dispose());
            Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        }

        Expect<InvalidDataException>("{\"weight_map\": ", "not well-formed JSON");
        Expect<InvalidDataException>("{\"metadata\": {}}", "no \"weight_map\"");
        Expect<InvalidDataException>("{\"weight_map\": {\"w\": 3}}", "not a file name");
        Expect<InvalidDataException>("{\"weight_map\": {\"w\": \"../shard-1.safetensors\"}}", "not a plain file name");
        Expect<InvalidDataException>("{\"weight_map\": {\"v\": \"shard-1.safetensors\"}}", "does not hold it");
        Expect<FileNotFoundException>("{\"weight_map\": {\"w\": \"shard-2.safetensors\"}}", "does not exist");

        System.IO.File.WriteAllText(index, "{\"weight_map\": {\"w\": \"shard-1.safetensors\"}}");
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
        Assert.Equal(["w"], checkpoint.Tensors.Select(t => t.Name));
    }
}
