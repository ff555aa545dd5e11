// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Collections.Generic;
using System.Linq;

namespace Compression.TorchSharp.Optimizers;

/// <summary>One parameter's optimizer state in <see cref="GaLoreMemoryReport"/>.</summary>
/// <param name="Name">The parameter's name.</param>
/// <param name="Shape">The parameter's shape.</param>
/// <param name="Rank">r when the parameter is projected; null for plain AdamW.</param>
/// <param name="ProjectsLeft">True when projected on the left (m side), false on the right, null when not projected.</param>
/// <param name="StateBytes">Bytes held now: element size × count summed over the moments and the projection (codes and
/// scales when INT4). The step counter is not a tensor and is not counted, as it is not for AdamW.</param>
/// <param name="AdamWBytes">What <c>torch.optim.AdamW</c> holds for the same parameter: 2 × element count × element size.</param>
/// <param name="FormulaBytes">The paper's count in bytes once the projection exists: for m ≤ n projected on the
/// left, (m·r + 2·n·r)·element size (the roles of m and n swap on the right); with INT4 projections the m·r term is
/// the packed codes and scales instead; for an unprojected parameter, the AdamW figure.</param>
public sealed record GaLoreMemoryRow(string Name, IReadOnlyList<long> Shape, int? Rank, bool? ProjectsLeft, long StateBytes, long AdamWBytes, long FormulaBytes);

/// <summary>Optimizer-state memory of a <see cref="GaLoreAdamW"/>, per parameter and in total, measured and predicted.</summary>
/// <param name="Parameters">One row per parameter, in the optimizer's order.</param>
public sealed record GaLoreMemoryReport(IReadOnlyList<GaLoreMemoryRow> Parameters)
{
    /// <summary>Bytes of optimizer state held now.</summary>
    public long StateBytes => Parameters.Sum(p => p.StateBytes);

    /// <summary>Bytes AdamW would hold for the same parameters.</summary>
    public long AdamWBytes => Parameters.Sum(p => p.AdamWBytes);

    /// <summary>Bytes the paper's formula predicts.</summary>
    public long FormulaBytes => Parameters.Sum(p => p.FormulaBytes);

    /// <summary><see cref="StateBytes"/> / <see cref="AdamWBytes"/>.</summary>
    public double RatioToAdamW => AdamWBytes == 0 ? 0 : (double)StateBytes / AdamWBytes;
}
