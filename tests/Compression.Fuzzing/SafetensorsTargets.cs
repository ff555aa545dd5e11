// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Buffers.Binary;
using Compression.Safetensors;

namespace Compression.Fuzzing;

/// <summary>The safetensors reader: the whole file (<see cref="SafetensorsFile"/>) and the header parser alone.</summary>
public static class SafetensorsTargets
{
    /// <summary>
    /// Opens the input as a safetensors file and reads every tensor (raw bytes and as float32). Documented:
    /// <see cref="InvalidDataException"/> from <see cref="SafetensorsFile.Open"/>; <see cref="NotSupportedException"/>
    /// from <see cref="SafetensorsFile.ReadDense(string)"/> for a tensor whose dimensions do not fit an array.
    /// </summary>
    public static void File(ReadOnlySpan<byte> input) => FuzzScratch.WithFile(input, "model.safetensors", path =>
    {
        SafetensorsFile file;
        try
        {
            file = SafetensorsFile.Open(path);
        }
        catch (InvalidDataException)
        {
            return;
        }

        using (file)
        {
            ReadAll(file);
        }
    });

    /// <summary>
    /// The header parser alone: the first 8 bytes (little-endian) are the data section's length, the rest is the JSON.
    /// Documented: <see cref="InvalidDataException"/>.
    /// </summary>
    public static void Header(ReadOnlySpan<byte> input)
    {
        if (input.Length < 8)
        {
            return;
        }

        long dataLength = (long)(BinaryPrimitives.ReadUInt64LittleEndian(input) & long.MaxValue);
        try
        {
            (List<SafetensorsTensorInfo> tensors, _) = SafetensorsHeader.Parse("fuzz", input[8..], dataLength);
            foreach (SafetensorsTensorInfo info in tensors)
            {
                // The header accepted it, so these must be consistent: bytes = elements × element size.
                if (info.ByteLength != info.ElementCount * info.DType.ElementSize())
                {
                    throw new InvalidOperationException($"Accepted tensor '{info.Name}' has {info.ByteLength} bytes for {info.ElementCount} elements.");
                }
            }
        }
        catch (InvalidDataException)
        {
        }
    }

    /// <summary>Reads every tensor of an opened file: bytes, then float32 unless its dimensions exceed an array's.</summary>
    internal static void ReadAll(SafetensorsFile file)
    {
        foreach (SafetensorsTensorInfo info in file.Tensors)
        {
            ReadOnlySpan<byte> bytes = file.GetBytes(info.Name);
            if (bytes.Length != info.ByteLength)
            {
                throw new InvalidOperationException($"GetBytes gave {bytes.Length} bytes for '{info.Name}' of {info.ByteLength}.");
            }

            try
            {
                _ = file.ReadDense(info.Name);
            }
            catch (NotSupportedException)
            {
            }
        }
    }
}
