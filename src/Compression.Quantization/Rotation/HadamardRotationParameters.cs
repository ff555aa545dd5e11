// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace Compression.Quantization.Rotation;

/// <summary>
/// What a checkpoint stores to rebuild a <see cref="HadamardRotation"/>: the block size and, for the randomized form,
/// the seed of the sign flips. The signs themselves are a fixed function of (seed, column) (see
/// <see cref="HadamardRotation.Sign"/>), so two integers describe the rotation for any layer width.
/// </summary>
/// <param name="BlockSize">The Hadamard block size: a power of two, at least 2.</param>
/// <param name="SignSeed">The seed of the random ±1 diagonal, or null for the plain block Hadamard.</param>
public sealed record HadamardRotationParameters(int BlockSize, long? SignSeed = null)
{
    /// <summary>Metadata key of the block size (safetensors <c>__metadata__</c> values are text).</summary>
    public const string BlockSizeKey = "hadamard.block_size";

    /// <summary>Metadata key of the sign seed; absent when there are no sign flips.</summary>
    public const string SignSeedKey = "hadamard.sign_seed";

    /// <summary>Checks the block size.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="BlockSize"/> is not a power of two ≥ 2.</exception>
    public void Validate()
    {
        if (BlockSize < 2 || (BlockSize & (BlockSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "BlockSize must be a power of two, at least 2 (16 for NVFP4, 32 for MXFP4).");
        }
    }

    /// <summary>The parameters as text entries for checkpoint metadata, keys prefixed by <paramref name="prefix"/>
    /// (e.g. a layer name and a dot).</summary>
    public Dictionary<string, string> ToMetadata(string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [prefix + BlockSizeKey] = BlockSize.ToString(CultureInfo.InvariantCulture),
        };
        if (SignSeed is long seed)
        {
            metadata[prefix + SignSeedKey] = seed.ToString(CultureInfo.InvariantCulture);
        }

        return metadata;
    }

    /// <summary>Reads parameters written by <see cref="ToMetadata"/>; null when the block-size key is absent (no rotation).</summary>
    /// <exception cref="InvalidDataException">A value is not an integer, or the block size is not a power of two ≥ 2.</exception>
    public static HadamardRotationParameters? FromMetadata(IReadOnlyDictionary<string, string> metadata, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(prefix);
        if (!metadata.TryGetValue(prefix + BlockSizeKey, out string? blockText))
        {
            return null;
        }

        if (!int.TryParse(blockText, NumberStyles.Integer, CultureInfo.InvariantCulture, out int blockSize) || blockSize < 2 || (blockSize & (blockSize - 1)) != 0)
        {
            throw new InvalidDataException($"Metadata '{prefix + BlockSizeKey}' is '{blockText}'; expected a power of two, at least 2.");
        }

        long? seed = null;
        if (metadata.TryGetValue(prefix + SignSeedKey, out string? seedText))
        {
            if (!long.TryParse(seedText, NumberStyles.Integer, CultureInfo.InvariantCulture, out long parsed))
            {
                throw new InvalidDataException($"Metadata '{prefix + SignSeedKey}' is '{seedText}'; expected a 64-bit integer.");
            }

            seed = parsed;
        }

        return new HadamardRotationParameters(blockSize, seed);
    }
}
