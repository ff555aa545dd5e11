// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Threading.Tasks;

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

    /// <summary>Fills an array with the next samples: the same values as <see cref="Fill(Span{double})"/>, with the
    /// pairs of a long array drawn on all cores (the generator is a counter, so pair j's bits are known without
    /// drawing the pairs before it; Box–Muller's logarithm and sine dominate the cost).</summary>
    public void Fill(double[] destination)
    {
        int start = 0;
        if (_hasSpare && destination.Length > 0)
        {
            destination[0] = _spare;
            _hasSpare = false;
            start = 1;
        }

        int pairs = (destination.Length - start) / 2;
        if (pairs >= ParallelPairs)
        {
            ulong origin = _state;
            int chunks = (pairs + ParallelPairs - 1) / ParallelPairs;
            Parallel.For(0, chunks, chunk =>
            {
                int first = chunk * ParallelPairs, end = Math.Min(pairs, first + ParallelPairs);
                for (int j = first; j < end; j++)
                {
                    ulong state = unchecked(origin + (ulong)(2 * (long)j) * Golden);
                    (destination[start + 2 * j], destination[start + 2 * j + 1]) = Pair(Mix(unchecked(state + Golden)), Mix(unchecked(state + 2 * Golden)));
                }
            });
            _state = unchecked(origin + (ulong)(2 * (long)pairs) * Golden);
            start += 2 * pairs;
        }

        Fill(destination.AsSpan(start));
    }

    private const int ParallelPairs = 1 << 14;
    private const ulong Golden = 0x9E3779B97F4A7C15UL;

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

        ulong first = NextBits();
        (double cosine, _spare) = Pair(first, NextBits());
        _hasSpare = true;
        return cosine;
    }

    /// <summary>Box–Muller: two standard normals from two 64-bit draws.</summary>
    private static (double Cosine, double Sine) Pair(ulong bits1, ulong bits2)
    {
        // u1 in (0, 1] so that the logarithm is finite.
        double u1 = (bits1 >> 11) * (1.0 / (1UL << 53));
        u1 = 1 - u1;
        double u2 = (bits2 >> 11) * (1.0 / (1UL << 53));
        double radius = Math.Sqrt(-2 * Math.Log(u1));
        double angle = 2 * Math.PI * u2;
        return (radius * Math.Cos(angle), radius * Math.Sin(angle));
    }

    private ulong NextBits() => Mix(unchecked(_state += Golden));

    /// <summary>SplitMix64's output function of a state.</summary>
    private static ulong Mix(ulong z)
    {
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
