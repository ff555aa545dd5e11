using System.Text;
using Compression.Safetensors;
using Compression.Testing;

namespace Compression.Core.Tests;

/// <summary>
/// Inputs found by fuzzing (tests/Compression.Fuzzing; the same bytes are committed under its corpus/ and replayed by
/// FuzzCorpusReplayTests) that once escaped as something other than <see cref="InvalidDataException"/>.
/// </summary>
public class SafetensorsFuzzRegressionTests
{
    [Fact]
    public void OpenIndex_InvalidUtf8InsideAShardName_ThrowsInvalidDataException()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new SafetensorsWriter();
        writer.Add<float>("w", SafetensorsDType.F32, [2], new float[2]);
        writer.Save(folder.File("shard-1.safetensors"));
        // One byte of the file name damaged into a lone UTF-8 continuation byte (0x8E), as AFL++'s bit flip left it;
        // JsonDocument only validates a string when it is read, which threw InvalidOperationException.
        byte[] index = [.. Encoding.UTF8.GetBytes("{\"weight_map\": {\"w\": \"shard"), 0x8E, .. Encoding.UTF8.GetBytes("1.safetensors\"}}")];
        File.WriteAllBytes(folder.File(SafetensorsCheckpoint.IndexFileName), index);

        InvalidDataException e = Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(folder.Path).Dispose());
        Assert.Contains("not valid UTF-8", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadDense_ValidEmptyTensorWithADimensionBeyondInt32_ThrowsTheDocumentedNotSupportedException()
    {
        // Zero elements, so the header is valid and the tensor has no bytes; DenseTensor's int dimensions cannot hold
        // it. The fuzzer's safetensors target treats NotSupportedException as documented only since ReadDense says so.
        byte[] header = Encoding.UTF8.GetBytes("{\"t\":{\"dtype\":\"F32\",\"shape\":[0,3000000000],\"data_offsets\":[0,0]}}");
        byte[] file = [.. BitConverter.GetBytes((ulong)header.Length), .. header];
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        string path = folder.File("model.safetensors");
        File.WriteAllBytes(path, file);

        using SafetensorsFile opened = SafetensorsFile.Open(path);
        Assert.Equal(0, opened.GetBytes("t").Length);
        NotSupportedException e = Assert.Throws<NotSupportedException>(() => opened.ReadDense("t"));
        Assert.Contains("GetBytes", e.Message, StringComparison.Ordinal);
    }
}
