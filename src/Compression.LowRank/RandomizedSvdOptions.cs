// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.LowRank;

/// <summary>
/// Settings of the randomized SVD (Halko, Martinsson and Tropp, 2011): the sketch is <c>rank + Oversampling</c>
/// Gaussian directions, refined by <see cref="PowerIterations"/> passes of <c>(A·Aᵀ)</c> with re-orthonormalisation.
/// Immutable; every property validates when set.
/// </summary>
/// <example>
/// <code>
/// var svd = SingularValueDecomposition.Randomized(weight, rank: 128, new RandomizedSvdOptions { PowerIterations = 4 });
/// </code>
/// </example>
public sealed record RandomizedSvdOptions
{
    /// <summary>The defaults: 10 extra directions, 2 power iterations, seed 0.</summary>
    public static RandomizedSvdOptions Default { get; } = new();

    /// <summary>Directions sketched beyond the rank asked for, in [0, 1024]. Default 10: the paper's advice, which
    /// makes the expected error close to optimal for any spectrum.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 1024].</exception>
    public int Oversampling
    {
        get;
        init => field = value is >= 0 and <= 1024 ? value
            : throw new ArgumentOutOfRangeException(nameof(Oversampling), value, "Oversampling must be in [0, 1024].");
    } = 10;

    /// <summary>Passes of <c>A·Aᵀ</c> over the sketch, in [0, 64]. Default 2 (as <c>torch.svd_lowrank</c>): each pass
    /// raises the singular values to a higher power, so slowly decaying spectra (those of trained weights) are
    /// separated from their tail.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [0, 64].</exception>
    public int PowerIterations
    {
        get;
        init => field = value is >= 0 and <= 64 ? value
            : throw new ArgumentOutOfRangeException(nameof(PowerIterations), value, "PowerIterations must be in [0, 64].");
    } = 2;

    /// <summary>Seed of the Gaussian test matrix; the same seed gives the same factors on every platform.</summary>
    public long Seed { get; init; }

    /// <summary>Where the products with the matrix run (<see cref="SingularValueDecomposition.Randomized(Tensors.DenseTensor, int, RandomizedSvdOptions?, System.Threading.CancellationToken)"/>):
    /// <see cref="ComputeDevice.Auto"/> (default: the GPU for matrices of at least a million elements when one is
    /// present, else the CPU), <see cref="ComputeDevice.Cpu"/> or <see cref="ComputeDevice.Gpu"/>. The GPU keeps the
    /// matrix in float32 and its products in float32 (the CPU route works in float64), so results agree to float32
    /// rounding (singular values within about 1e-6 of σ₁), not bit for bit.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined device.</exception>
    public ComputeDevice Device
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Device), value, "Auto, Cpu or Gpu.");
    }
}
