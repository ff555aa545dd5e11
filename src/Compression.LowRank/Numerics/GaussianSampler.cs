// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.LowRank.Numerics;

/// <summary>
/// Standard normal samples from a seed, the same on every platform and runtime version: SplitMix64 for the uniform
/// bits (System.Random's seeded sequence is an implementation detail) and the Box–Muller transform.
/// </summary>
internal sealed class GaussianSampler
{
    private ulong _state;
    private double _spare;
    private bool _hasSpare;

    public GaussianSampler(long seed) => _state = unchecked((ulong)seed ^ 0x9E3779B97F4A7C15UL);

    public void Fill(Span<double> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = Next();
        }
    }

    public double Next()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spare;
        }

        // u1 in (0, 1] so that the logarithm is finite.
        double u1 = (NextBits() >> 11) * (1.0 / (1UL << 53));
        u1 = 1 - u1;
        double u2 = (NextBits() >> 11) * (1.0 / (1UL << 53));
        double radius = Math.Sqrt(-2 * Math.Log(u1));
        double angle = 2 * Math.PI * u2;
        _spare = radius * Math.Sin(angle);
        _hasSpare = true;
        return radius * Math.Cos(angle);
    }

    private ulong NextBits()
    {
        ulong z = unchecked(_state += 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
