// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression;

/// <summary>A progress report from a long-running compression.</summary>
/// <param name="Stage">What is being done, e.g. "gptq", "calibration".</param>
/// <param name="Layer">The layer being processed, when known.</param>
/// <param name="Completed">Units of work done.</param>
/// <param name="Total">Units of work in all.</param>
public sealed record CompressionProgress(string Stage, string? Layer, long Completed, long Total)
{
    /// <summary>The fraction done, in [0, 1].</summary>
    public double Fraction => Total <= 0 ? 1 : (double)Completed / Total;
}
