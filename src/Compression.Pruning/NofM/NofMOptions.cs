// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning;

/// <summary>
/// An N:M semi-structured pattern: in every group of <see cref="M"/> consecutive weights along a row (the input
/// dimension) at most <see cref="N"/> are non-zero. 2:4 is the pattern NVIDIA's sparse tensor cores (Ampere and later)
/// execute at twice the dense rate. Immutable; each property validates its own range when set, and
/// <see cref="Validate"/> (called by every pruner that takes these options) checks N &lt; M.
/// </summary>
/// <example>
/// <code>
/// PrunedTensor p = new NofMPruner(NofMOptions.TwoOfFour).Prune(weight);     // 50 % sparse, hardware layout
/// var fourOfEight = new NofMOptions { N = 4, M = 8 };
/// </code>
/// </example>
public sealed record NofMOptions
{
    /// <summary>Largest supported group: a group's selection is done in registers, and no hardware pattern is wider.</summary>
    public const int MaxM = 16;

    /// <summary>2:4, the tensor-core pattern (and the default).</summary>
    public static NofMOptions TwoOfFour { get; } = new();

    /// <summary>4:8, also 50 % sparse, with more freedom per group than 2:4.</summary>
    public static NofMOptions FourOfEight { get; } = new() { N = 4, M = 8 };

    /// <summary>Weights kept per group, in [1, 15]; must be below <see cref="M"/>. Default 2.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [1, 15].</exception>
    public int N
    {
        get;
        init => field = value is >= 1 and < MaxM
            ? value
            : throw new ArgumentOutOfRangeException(nameof(N), value, $"N (weights kept per group) must lie in [1, {MaxM - 1}].");
    } = 2;

    /// <summary>Group length along the input dimension, in [2, 16]; the weight's columns must be a multiple of it.
    /// Default 4.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside [2, 16].</exception>
    public int M
    {
        get;
        init => field = value is >= 2 and <= MaxM
            ? value
            : throw new ArgumentOutOfRangeException(nameof(M), value, $"M (the group length) must lie in [2, {MaxM}].");
    } = 4;

    /// <summary>The sparsity the pattern gives, <c>1 − N/M</c>.</summary>
    public double Sparsity => 1 - (double)N / M;

    /// <summary>Checks what the property setters cannot check alone (they run in either order): N &lt; M.</summary>
    /// <exception cref="ArgumentException">N ≥ M: a group would keep everything.</exception>
    public void Validate()
    {
        if (N >= M)
        {
            throw new ArgumentException($"An N:M pattern needs N < M; {N}:{M} would keep every weight.", nameof(N));
        }
    }

    /// <summary>Creates the pruner.</summary>
    public NofMPruner CreateCompressor() => new(this);

    /// <summary>Checks that a weight's columns split into whole groups.</summary>
    internal void ValidateColumns(string method, int columns, string paramName)
    {
        if (columns % M != 0)
        {
            throw new ArgumentException(
                $"{method}: the weight has {columns} columns, not a multiple of M = {M}; {N}:{M} groups run along whole rows.", paramName);
        }
    }
}
