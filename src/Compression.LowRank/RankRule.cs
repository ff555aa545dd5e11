// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.LowRank;

/// <summary>
/// How many singular triplets a factorisation keeps: a fixed rank, a share of the dense parameter count, or a share of
/// the spectrum's energy. Immutable; the factories validate.
/// </summary>
/// <example>
/// <code>
/// RankRule.Fixed(128)            // r = 128
/// RankRule.ParameterRatio(0.5)   // r·(m + n) ≤ 0.5·m·n: half the parameters
/// RankRule.Energy(0.9)           // the smallest r whose σ₁² + … + σ_r² reaches 90% of ‖W‖²_F
/// </code>
/// </example>
public abstract record RankRule
{
    private protected RankRule()
    {
    }

    /// <summary>Keeps exactly <paramref name="rank"/> triplets; a matrix with fewer columns or rows is refused when compressed.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rank"/> is below 1.</exception>
    public static RankRule Fixed(int rank) => new FixedRank(rank);

    /// <summary>Keeps the largest r with <c>r·(m + n) ≤ ratio·m·n</c> (at least 1, at most min(m, n)).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="ratio"/> is outside (0, 1] or NaN.</exception>
    public static RankRule ParameterRatio(double ratio) => new ParameterRatioRank(ratio);

    /// <summary>Keeps the smallest r whose leading squared singular values reach <paramref name="fraction"/> of the total.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fraction"/> is outside (0, 1] or NaN.</exception>
    public static RankRule Energy(double fraction) => new EnergyRank(fraction);

    /// <summary>The rank for an m×n matrix when it does not depend on the spectrum; null when it does.</summary>
    /// <exception cref="ArgumentException">A fixed rank exceeds min(m, n).</exception>
    internal abstract int? RankFor(int rows, int columns);

    /// <summary>The rank given the leading singular values and the total energy ‖M‖²_F; null when the values given do
    /// not reach the rule (more of the spectrum is needed).</summary>
    internal abstract int? RankFor(ReadOnlySpan<double> singularValues, double totalEnergy, int rows, int columns);

    private sealed record FixedRank : RankRule
    {
        public FixedRank(int rank) => Rank = rank >= 1 ? rank
            : throw new ArgumentOutOfRangeException(nameof(rank), rank, "The rank must be at least 1.");

        public int Rank { get; }

        internal override int? RankFor(int rows, int columns) => Rank <= Math.Min(rows, columns) ? Rank
            : throw new ArgumentException($"Rank {Rank} exceeds min(rows, columns) = {Math.Min(rows, columns)} of the {rows}×{columns} weight.", "weight");

        internal override int? RankFor(ReadOnlySpan<double> singularValues, double totalEnergy, int rows, int columns) => RankFor(rows, columns);

        public override string ToString() => $"rank {Rank}";
    }

    private sealed record ParameterRatioRank : RankRule
    {
        public ParameterRatioRank(double ratio) => Ratio = ratio > 0 && ratio <= 1 ? ratio
            : throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "The parameter ratio must be in (0, 1].");

        public double Ratio { get; }

        internal override int? RankFor(int rows, int columns)
        {
            double budget = Ratio * rows * columns / (rows + (double)columns);
            return (int)Math.Clamp(Math.Floor(budget), 1, Math.Min(rows, columns));
        }

        internal override int? RankFor(ReadOnlySpan<double> singularValues, double totalEnergy, int rows, int columns) => RankFor(rows, columns);

        public override string ToString() => $"{Ratio:P0} of the parameters";
    }

    private sealed record EnergyRank : RankRule
    {
        public EnergyRank(double fraction) => Fraction = fraction > 0 && fraction <= 1 ? fraction
            : throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The energy fraction must be in (0, 1].");

        public double Fraction { get; }

        internal override int? RankFor(int rows, int columns) => null;

        internal override int? RankFor(ReadOnlySpan<double> singularValues, double totalEnergy, int rows, int columns)
        {
            // A relative slack of 1e-12 so that asking for all the energy is met despite the rounding of the two sums.
            double target = Fraction * totalEnergy * (1 - 1e-12);
            double sum = 0;
            for (int r = 0; r < singularValues.Length; r++)
            {
                sum += singularValues[r] * singularValues[r];
                if (sum >= target)
                {
                    return r + 1;
                }
            }

            return singularValues.Length == Math.Min(rows, columns) ? singularValues.Length : null;
        }

        public override string ToString() => $"{Fraction:P1} of the energy";
    }
}
