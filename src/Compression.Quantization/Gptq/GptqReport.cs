// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression.Quantization;

/// <summary>What one GPTQ run achieved and what it took.</summary>
/// <param name="Objective">The layer-output error ‖(W − Q)·Xᵀ‖²_F / n = ½·Σ_rows δᵀ·H·δ with δ = W − Q and the
/// undamped H = 2·XᵀX/n, in float64: the quantity GPTQ minimizes, comparable with round-to-nearest's.</param>
/// <param name="ColumnLosses">Per original column j, Σ_rows (w − q)² / (2·[H⁻¹]_jj²) at the moment column j was
/// quantized (the reference implementation's <c>Losses</c> summed over rows), with the damped H.</param>
/// <param name="TotalLoss">Σ <paramref name="ColumnLosses"/>; in exact arithmetic it equals ½·Σ_rows δᵀ·(H + λI)·δ.</param>
/// <param name="Dampening">The λ finally added to the diagonal of H (absolute).</param>
/// <param name="DampeningPercent">λ as a fraction of the mean diagonal of H (after dead inputs were set to 1).</param>
/// <param name="DampeningAttempts">Cholesky factorizations tried; 1 unless H needed more dampening.</param>
/// <param name="DeadColumns">Inputs with H_jj = 0 (never active in the calibration data); their weights are set to 0.</param>
/// <param name="ProcessingOrder">Processing position → original column (identity without act-order).</param>
/// <param name="Elapsed">Wall-clock time of the quantization, objective included.</param>
public sealed record GptqReport(
    double Objective,
    IReadOnlyList<double> ColumnLosses,
    double TotalLoss,
    double Dampening,
    double DampeningPercent,
    int DampeningAttempts,
    int DeadColumns,
    IReadOnlyList<int> ProcessingOrder,
    TimeSpan Elapsed)
{
    /// <summary>Where the sweep and the objective ran: "CPU", or the accelerator's name.</summary>
    public string Device { get; init; } = "CPU";

    /// <summary>Time of the dampening loop: the factorization of H + λI and U (float64, on the CPU).</summary>
    public TimeSpan FactorizationTime { get; init; }

    /// <summary>Time of the block sweep with its lazy updates.</summary>
    public TimeSpan SweepTime { get; init; }

    /// <summary>Time of the float64 objective.</summary>
    public TimeSpan ObjectiveTime { get; init; }
}
