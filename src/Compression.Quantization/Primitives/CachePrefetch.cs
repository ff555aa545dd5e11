// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Compression.Quantization.Primitives;

/// <summary>
/// Software prefetch of the next row while the current one is encoded. Row-local quantization reads each row twice
/// (statistics, then codes); the second read hits the cache, but the first waits on memory while the core idles, and
/// the encode then runs while memory idles. Asking for row r + 1 a chunk at a time while row r is encoded overlaps
/// the two, so the pass approaches the slower of memory and arithmetic instead of their sum.
/// </summary>
internal static class CachePrefetch
{
    /// <summary>Floats encoded between two prefetch bursts: 2 KiB, 32 cache lines, within the core's miss buffers.</summary>
    public const int Chunk = 512;

    /// <summary>Turns the hints off, for A/B measurements (benchmarks set it through reflection).</summary>
    internal static bool Off;

    /// <summary>Hints that <paramref name="values"/> will be read soon (a no-op without SSE). Never faults.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Request(ReadOnlySpan<float> values)
    {
        if (!Sse.IsSupported || values.IsEmpty || Off)
        {
            return;
        }

        // A hint cannot fault and a moved array only makes it useless, so no pinning is needed.
        ref float first = ref MemoryMarshal.GetReference(values);
        for (int i = 0; i < values.Length; i += 16)
        {
            Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref first, i)));
        }
    }
}
