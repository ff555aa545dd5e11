// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using Compression.LowRank;
using Compression.Pruning;
using Compression.Pruning.Storage;
using Compression.Quantization;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.Serialization;

namespace Compression.Fuzzing;

/// <summary>
/// Compressed tensors read back from safetensors files: the library's own format
/// (<see cref="CompressedTensorSerializer"/> with every family's kinds) and the compressed-tensors checkpoint codec
/// (<see cref="CompressedTensorsCodec"/>).
/// </summary>
public static class CompressedTensorTargets
{
    /// <summary>Tensors above this many elements are read but not decompressed (the harness's bound on memory; the
    /// reader itself allocates only what the file holds).</summary>
    public const long MaxDecompressedElements = 1 << 22;

    /// <summary>The serializer with Core's, Quantization's, Pruning's and LowRank's kinds.</summary>
    public static CompressedTensorSerializer AllKinds { get; } =
        LowRankTensor.Register(
            SemiStructuredTensor.Register(BsrTensor.Register(CsrTensor.Register(PrunedTensor.Register(
                TritPlaneTensor.Register(GptqTensor.Register(QuantizedTensor.Register(CompressedTensorSerializer.Default))))))));

    /// <summary>
    /// The input is a safetensors file; every <c>name.kind</c> entry of its metadata is read with
    /// <see cref="CompressedTensorSerializer.Read"/> and decompressed. Documented: <see cref="InvalidDataException"/>.
    /// </summary>
    public static void Serializer(ReadOnlySpan<byte> input) => FuzzScratch.WithFile(input, "model.safetensors", path =>
    {
        SafetensorsCheckpoint checkpoint;
        try
        {
            checkpoint = SafetensorsCheckpoint.Open(path);
        }
        catch (InvalidDataException)
        {
            return;
        }

        using (checkpoint)
        {
            foreach (string key in checkpoint.Metadata.Keys)
            {
                if (!key.EndsWith(".kind", StringComparison.Ordinal) || key.Length == ".kind".Length)
                {
                    continue;
                }

                CompressedTensor tensor;
                try
                {
                    tensor = AllKinds.Read(checkpoint, key[..^".kind".Length]);
                }
                catch (InvalidDataException)
                {
                    continue;
                }

                Decompress(tensor);
            }
        }
    });

    /// <summary>
    /// The input is a 4-byte little-endian length L, L bytes of a <c>quantization_config</c> JSON object, then a
    /// safetensors file. Every module <see cref="CompressedTensorsCodec.ModulesOf"/> finds is read with
    /// <see cref="CompressedTensorsCodec.Read"/> and decompressed. Documented: <see cref="InvalidDataException"/>.
    /// Text that is not a JSON object is the caller's to reject and is skipped.
    /// </summary>
    public static void Codec(ReadOnlySpan<byte> input)
    {
        if (input.Length < 4)
        {
            return;
        }

        uint length = BinaryPrimitives.ReadUInt32LittleEndian(input);
        if (length > input.Length - 4)
        {
            return;
        }

        JsonObject? config;
        try
        {
            // As the library's callers read config.json: File.ReadAllText, then JsonNode.Parse of the text.
            config = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(input.Slice(4, (int)length))) as JsonObject;
        }
        catch (JsonException)
        {
            return;
        }

        if (config is null)
        {
            return;
        }

        FuzzScratch.WithFile(input[(4 + (int)length)..], "model.safetensors", path =>
        {
            SafetensorsCheckpoint checkpoint;
            try
            {
                checkpoint = SafetensorsCheckpoint.Open(path);
            }
            catch (InvalidDataException)
            {
                return;
            }

            using (checkpoint)
            {
                IReadOnlyDictionary<string, (string Format, JsonObject Weights)> modules;
                try
                {
                    modules = CompressedTensorsCodec.ModulesOf(config, checkpoint);
                }
                catch (InvalidDataException)
                {
                    return;
                }

                foreach ((string module, (string format, JsonObject weights)) in modules)
                {
                    CompressedTensor tensor;
                    try
                    {
                        tensor = CompressedTensorsCodec.Read(checkpoint, module, format, weights);
                    }
                    catch (InvalidDataException)
                    {
                        continue;
                    }

                    Decompress(tensor);
                }
            }
        });
    }

    private static void Decompress(CompressedTensor tensor)
    {
        if (tensor.ElementCount <= MaxDecompressedElements)
        {
            _ = tensor.Decompress();
        }
    }
}
