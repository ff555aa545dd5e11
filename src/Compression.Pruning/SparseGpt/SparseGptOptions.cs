// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Pruning;

/// <summary>
/// Options of SparseGPT ("SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot", Frantar and
/// Alistarh, 2023): the sparsity target (unstructured, or N:M semi-structured), the block size of the lazy updates,
/// the block of the adaptive mask selection and the dampening of the Hessian. Immutable; every property validates
/// when set, and <see cref="Validate()"/> checks the combination.
/// </summary>
/// <remarks>
/// <para>Unstructured (<see cref="M"/> = 0): in every mask block of <see cref="EffectiveMaskBlockSize"/> columns, all
/// rows together, exactly round(<see cref="Sparsity"/> · rows · width) weights are pruned (the nearest integer, ties to
/// even).</para>
/// <para>Semi-structured N:M (<see cref="M"/> &gt; 0): in every row, every run of M consecutive columns keeps exactly N
/// weights (2:4 is NVIDIA's sparse tensor core pattern). <see cref="Sparsity"/> is then not used; the sparsity is
/// 1 − N/M. The column count must be a multiple of M.</para>
/// </remarks>
/// <example>
/// <code>
/// var pruner = new SparseGptPruner(SparseGptOptions.Unstructured50);
/// PrunedTensor pruned = pruner.Prune(weight, CompressionContext.Default with { InputHessian = hessian });
/// var twoFour = new SparseGptPruner(SparseGptOptions.TwoFour with { BlockSize = 64 });
/// </code>
/// </example>
public sealed record SparseGptOptions
{
    /// <summary>Half the weights of every mask block, unstructured (the paper's 50% setting).</summary>
    public static SparseGptOptions Unstructured50 { get; } = new() { Sparsity = 0.5 };

    /// <summary>2:4: two of every four consecutive weights of a row kept.</summary>
    public static SparseGptOptions TwoFour { get; } = new() { N = 2, M = 4 };

    /// <summary>4:8: four of every eight consecutive weights of a row kept.</summary>
    public static SparseGptOptions FourEight { get; } = new() { N = 4, M = 8 };

    /// <summary>The fraction of weights pruned in unstructured mode, in [0, 1). Default 0.5. Not used for N:M.</summary>
    public double Sparsity
    {
        get;
        init => field = value is >= 0 and < 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Sparsity), value, "Sparsity must lie in [0, 1).");
    } = 0.5;

    /// <summary>N:M: the weights kept in every group of <see cref="M"/> consecutive columns of a row, in [1, M). Default
    /// 0 (unstructured). The reference implementation's <c>prunen</c> counts the pruned ones instead (M − N; the same
    /// for 2:4 and 4:8).</summary>
    public int N
    {
        get;
        init => field = value is >= 0 and <= 15
            ? value
            : throw new ArgumentOutOfRangeException(nameof(N), value, "N must lie in [1, 15] for N:M sparsity (0 for unstructured).");
    }

    /// <summary>N:M: the group of consecutive columns, in [2, 16]. Default 0 (unstructured).</summary>
    public int M
    {
        get;
        init => field = value is 0 or (>= 2 and <= 16)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(M), value, "M must lie in [2, 16] for N:M sparsity (0 for unstructured).");
    }

    /// <summary>Columns pruned with immediate error feedback before the remaining columns receive one batched update
    /// (the paper's B). Default 128, at least 1. Only speed depends on it (up to float rounding), except that it is the
    /// default <see cref="MaskBlockSize"/>. For N:M it is rounded to a multiple of M so that no group straddles two blocks.</summary>
    public int BlockSize
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(BlockSize), value, "BlockSize must be at least 1.");
    } = 128;

    /// <summary>Unstructured: the columns whose mask is chosen together, all rows at once, when the sweep reaches the
    /// block's first column (the paper's adaptive mask selection, B_s). Default null: <see cref="BlockSize"/>, as in the
    /// reference implementation. At least 1. Not used for N:M, whose mask is chosen per group of M.</summary>
    public int? MaskBlockSize
    {
        get;
        init => field = value is null or >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaskBlockSize), value, "MaskBlockSize must be at least 1 (or null for BlockSize).");
    }

    /// <summary>λ as a fraction of the mean diagonal of H, added to the diagonal before inverting (the reference's
    /// <c>percdamp</c>). Default 0.01; must lie in (0, 1].</summary>
    public double DampeningPercent
    {
        get;
        init => field = value is > 0 and <= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(DampeningPercent), value, "DampeningPercent must lie in (0, 1].");
    } = 0.01;

    /// <summary>How many Cholesky factorizations are tried in all, λ growing by <see cref="DampeningGrowth"/> after each
    /// failure, before SparseGPT gives up with <see cref="InvalidOperationException"/>. Default 6, in [1, 30].</summary>
    public int MaxDampeningAttempts
    {
        get;
        init => field = value is >= 1 and <= 30
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxDampeningAttempts), value, "MaxDampeningAttempts must lie in [1, 30].");
    } = 6;

    /// <summary>The factor λ grows by after a failed factorization. Default 10; must be finite and above 1.</summary>
    public double DampeningGrowth
    {
        get;
        init => field = value > 1 && double.IsFinite(value)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(DampeningGrowth), value, "DampeningGrowth must be finite and greater than 1.");
    } = 10;

    /// <summary>Whether the target is N:M semi-structured (<see cref="M"/> &gt; 0).</summary>
    public bool IsSemiStructured => M > 0;

    /// <summary>The mask-selection block in unstructured mode: <see cref="MaskBlockSize"/>, or <see cref="BlockSize"/>.</summary>
    public int EffectiveMaskBlockSize => MaskBlockSize ?? BlockSize;

    /// <summary>Creates the pruner.</summary>
    public SparseGptPruner CreateCompressor() => new(this);

    /// <summary>Checks the combination of options, independently of a weight's shape.</summary>
    /// <exception cref="ArgumentException">N and M do not form an N:M pattern (0 &lt; N &lt; M ≤ 16, or both 0).</exception>
    public void Validate()
    {
        if (M == 0 && N != 0)
        {
            throw new ArgumentException($"N = {N} needs M: set M (2–16) for N:M sparsity, or N = 0 for unstructured.", nameof(N));
        }

        if (M > 0 && (N < 1 || N >= M))
        {
            throw new ArgumentException($"N:M sparsity keeps N of every M weights and needs 0 < N < M; got {N}:{M}.", nameof(N));
        }
    }

    /// <summary>Checks the options against a weight's shape (<see cref="Validate()"/>, and for N:M that M divides the columns).</summary>
    /// <exception cref="ArgumentException">The combination is invalid; the message says why.</exception>
    public void Validate(int rows, int columns)
    {
        Validate();
        if (M > 0 && columns % M != 0)
        {
            throw new ArgumentException($"{N}:{M} sparsity needs the column count to be a multiple of {M}; the weight has {columns} columns.", "weight");
        }
    }
}
