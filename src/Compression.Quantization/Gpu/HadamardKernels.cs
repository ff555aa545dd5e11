// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Quantization.Rotation;
using ILGPU;

namespace Compression.Quantization.Gpu;

/// <summary>
/// Device code for the block-wise fast Walsh–Hadamard transform. No allocation, no exceptions: the host validated
/// every length. The butterflies run in the order of <c>HadamardPrimitives</c> (strides 1, 2, 4, … then one
/// multiplication by the scale) so each output is the same float32 expression as on the CPU, bit for bit.
/// </summary>
internal static class HadamardKernels
{
    /// <summary>Floats one thread group transforms in shared memory: 4 KiB, blocks of up to this size in one pass.</summary>
    public const int Tile = 1024;

    /// <summary>
    /// One group per tile of <see cref="Tile"/> consecutive floats: load into shared memory, stages h = 1 …
    /// <paramref name="innerBlock"/>/2 with a barrier between stages, multiply by <paramref name="scale"/>, store.
    /// Tiles are aligned to blocks (the block size divides <see cref="Tile"/>, or <see cref="Tile"/> divides it), so
    /// a butterfly never leaves its tile; a partial last tile holds whole blocks and its padding is never stored.
    /// </summary>
    public static void SharedStages(ArrayView<float> data, int innerBlock, float scale)
    {
        ArrayView<float> tile = SharedMemory.Allocate<float>(Tile);
        long start = (long)Grid.IdxX * Tile;
        long left = data.Length - start;
        int valid = left < Tile ? (int)left : Tile;
        int thread = Group.IdxX, threads = Group.DimX;
        for (int k = thread; k < Tile; k += threads)
        {
            tile[k] = k < valid ? data[start + k] : 0f;
        }

        Group.Barrier();
        for (int h = 1; h < innerBlock; h *= 2)
        {
            for (int p = thread; p < Tile / 2; p += threads)
            {
                // Pair p of the stage: position p with bit log2(h) shifted in as zero, and its partner h above.
                int i = ((p & ~(h - 1)) << 1) | (p & (h - 1));
                float a = tile[i], b = tile[i + h];
                tile[i] = a + b;
                tile[i + h] = a - b;
            }

            Group.Barrier();
        }

        for (int k = thread; k < valid; k += threads)
        {
            data[start + k] = tile[k] * scale;
        }
    }

    /// <summary>One stage of stride <paramref name="h"/> ≥ <see cref="Tile"/> straight in global memory, one thread
    /// per butterfly (blocks larger than a tile), times <paramref name="scale"/> (1 except on the last stage: exact).</summary>
    public static void GlobalStage(Index1D pair, ArrayView<float> data, int h, float scale)
    {
        long p = pair;
        long i = ((p & ~(long)(h - 1)) << 1) | (p & (h - 1));
        float a = data[i], b = data[i + h];
        data[i] = (a + b) * scale;
        data[i + h] = (a - b) * scale;
    }

    /// <summary>Flips the sign of element i where column i mod <paramref name="columns"/> has D = −1 (the randomized
    /// rotation's diagonal, computed as on the CPU).</summary>
    public static void FlipSigns(Index1D index, ArrayView<float> data, int columns, long seed)
    {
        if (HadamardSigns.IsNegative(seed, (int)(index % columns)))
        {
            data[index] = -data[index];
        }
    }
}
