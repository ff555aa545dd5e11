// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Quantization.Rotation;

/// <summary>
/// The random ±1 diagonal of a randomized Hadamard rotation as a pure function of (seed, column), so that it needs no
/// storage, no RNG state and no particular .NET version's <see cref="System.Random"/>, and runs unchanged in a kernel.
/// </summary>
internal static class HadamardSigns
{
    /// <summary>Whether D[column, column] is −1: the top bit of SplitMix64's output for seed + (column + 1)·golden ratio.</summary>
    public static bool IsNegative(long seed, int column)
    {
        unchecked
        {
            ulong z = (ulong)seed + (ulong)(column + 1) * 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            return (z >> 63) != 0;
        }
    }
}
