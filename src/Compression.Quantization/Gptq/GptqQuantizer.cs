// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Diagnostics;
using System.Linq;
using System.Numerics.Tensors;
using System.Threading.Tasks;
using Compression.Gpu.Runtime;
using Compression.Numerics;
using Compression.Quantization.Gpu;
using Compression.Quantization.Rotation;
using Compression.Tensors;
using ILGPU.Runtime;
using Microsoft.Extensions.Logging;

namespace Compression.Quantization;

/// <summary>
/// GPTQ ("GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers", Frantar et al., 2022):
/// quantizes a weight column by column and spreads each column's rounding error over the columns not yet quantized
/// through the inverse of the layer's input Hessian H = 2·XᵀX/n, minimizing ‖(W − Q)·Xᵀ‖² greedily. Works for every
/// integer, FP, MX and NVFP4 format of <see cref="RtnOptions"/>, per-channel or per-group.
/// </summary>
/// <remarks>
/// <para>Steps (docs/gptq.md has the maths): inputs never active (H_jj = 0) get H_jj = 1 and a zero weight column;
/// with act-order the columns are permuted by descending diag(H); λ = <see cref="GptqOptions.DampeningPercent"/>·mean(diag H)
/// is added to the diagonal and U, the upper Cholesky factor of (H + λI)⁻¹, is computed in float64 (λ grows by
/// <see cref="GptqOptions.DampeningGrowth"/> while the factorization fails, each retry logged). Then, in blocks of
/// <see cref="GptqOptions.BlockSize"/> columns: each column j is quantized, its error e = (w_j − q_j)/U_jj is fed to
/// the rest of the block at once, and after the block the remaining columns get the batched update W −= E·U[block, rest]
/// (a matrix product). Weights are float32 during the sweep, as in the reference implementation.</para>
/// <para>A group's scale is chosen by the format itself (the same rule as round-to-nearest) from the group's current,
/// error-updated values when the sweep reaches its first column; per-channel, that is the (dead-zeroed) original row.
/// NVFP4's tensor scale comes from the original weight's absmax, since it must be fixed before any group is coded.
/// With <see cref="GptqOptions.StaticGroups"/> every group's scale is chosen up front from the original weight.</para>
/// <para>Rows are independent given U, so each block runs in parallel over tiles of rows; progress is reported per
/// block and cancellation is checked per block.</para>
/// <para>Joint sparsity and quantization: when <see cref="CompressionContext.Prior"/> carries a
/// <see cref="CompressedTensor.SparsityMask"/> (a pruner's result, e.g. through <see cref="Composition.ChainedCompressor"/>),
/// every pruned weight is coded as 0, which it decodes to exactly, and its error (its whole current value) is fed
/// forward like any other, so the survivors absorb it; each group's parameters are chosen from its values with the
/// pruned ones at 0. The result carries the mask (<see cref="GptqTensor.SparsityMask"/>). The CPU sweep only: the GPU
/// quantizer refuses a mask with <see cref="NotSupportedException"/>.</para>
/// </remarks>
/// <example>
/// <code>
/// var hessian = new HessianAccumulator(weight.Columns);
/// foreach (DenseTensor batch in layerInputs) hessian.Add(batch);
/// var gptq = new GptqQuantizer(GptqOptions.W4Group128);
/// GptqTensor q = gptq.Quantize(weight, CompressionContext.Default with { InputHessian = hessian });
/// </code>
/// </example>
public sealed class GptqQuantizer : ICompressor
{
    /// <summary>Creates a quantizer.</summary>
    /// <exception cref="ArgumentException">The options cannot be used with GPTQ (see <see cref="GptqOptions.Validate()"/>).</exception>
    public GptqQuantizer(GptqOptions options)
        : this(options, null)
    {
    }

    /// <summary>Creates a quantizer whose sweep and objective run on <paramref name="engine"/> (the GPU quantizer's), or
    /// on the engine <see cref="GptqOptions.Device"/> selects per call when null.</summary>
    internal GptqQuantizer(GptqOptions options, GptqEngine? engine)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _engine = engine;
    }

    private readonly GptqEngine? _engine;

    /// <summary>The options.</summary>
    public GptqOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "gptq";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.InputHessian;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context) => Quantize(weight, context);

    /// <summary>Quantizes with a typed result (same checks as <see cref="Compress"/>).</summary>
    /// <exception cref="ArgumentException">The weight is not a finite matrix, the Hessian is missing, of the wrong size or
    /// not finite, the options do not fit the weight's shape, or the prior stage's sparsity mask differs in shape, comes
    /// with a Hadamard rotation (which would mix pruned and kept weights) or cannot be kept by the format (no exact 0).</exception>
    /// <exception cref="NotSupportedException">A sparsity mask on an engine without mask support (the GPU quantizer).</exception>
    /// <exception cref="InvalidOperationException">H + λI could not be factorized within
    /// <see cref="GptqOptions.MaxDampeningAttempts"/> attempts.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public GptqTensor Quantize(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        Options.Validate(weight.Rows, weight.Columns);
        SparsityMask? mask = PriorMask(weight, context);
        double[] hessian = context.InputHessian!.GetHessian();
        ValidateHessian(hessian, weight.Columns, nameof(context));
        return Run(weight, hessian, mask, context);
    }

    /// <summary>Quantizes against an explicit Hessian (c × c, row-major), for tests and callers with their own statistics.</summary>
    /// <exception cref="ArgumentException">The weight or the Hessian is invalid.</exception>
    internal GptqTensor Quantize(DenseTensor weight, double[] hessian, CompressionContext? context = null)
    {
        context ??= CompressionContext.Default;
        CompressorArguments.Validate(WeightOnly.Instance, weight, context);
        ArgumentNullException.ThrowIfNull(hessian);
        Options.Validate(weight.Rows, weight.Columns);
        SparsityMask? mask = PriorMask(weight, context);
        ValidateHessian(hessian, weight.Columns, nameof(hessian));
        return Run(weight, hessian, mask, context);
    }

    /// <summary>The prior stage's sparsity mask, checked against the weight, the options and the engine; null without one.</summary>
    private SparsityMask? PriorMask(DenseTensor weight, CompressionContext context)
    {
        if (context.Prior?.SparsityMask is not { } mask)
        {
            return null;
        }

        if (mask.Rows != weight.Rows || mask.Columns != weight.Columns)
        {
            throw new ArgumentException(
                $"gptq: the prior stage's sparsity mask is {mask.Rows}×{mask.Columns} but the weight is {weight.Rows}×{weight.Columns}.", nameof(context));
        }

        if (Options.Rotation is not null)
        {
            throw new ArgumentException(
                "gptq: a Hadamard rotation (MR-GPTQ) mixes the columns, so the prior stage's sparsity mask cannot be kept; quantize the pruned " +
                "weight without Rotation.", nameof(context));
        }

        return mask;
    }

    private static void ValidateHessian(double[] hessian, int columns, string paramName)
    {
        if (hessian.Length != (long)columns * columns)
        {
            throw new ArgumentException($"gptq: the Hessian holds {hessian.Length} values; the weight's {columns} columns need {columns}×{columns}.", paramName);
        }

        // Any NaN or ±∞ makes the sum non-finite (a finite sum cannot hide one), so the scan runs only when one is there.
        bool scan = !double.IsFinite(TensorPrimitives.Sum<double>(hessian));
        for (int i = 0; scan && i < hessian.Length; i++)
        {
            if (!double.IsFinite(hessian[i]))
            {
                throw new ArgumentException(
                    $"gptq: the input Hessian holds {hessian[i]} at ({i / columns}, {i % columns}); it must be finite (check the calibration activations for overflow).",
                    paramName);
            }
        }

        for (int j = 0; j < columns; j++)
        {
            if (hessian[j * columns + j] < 0)
            {
                throw new ArgumentException(
                    $"gptq: the input Hessian has H[{j},{j}] = {hessian[j * columns + j]} < 0; a Hessian 2·XᵀX/n has a non-negative diagonal.", paramName);
            }
        }
    }

    /// <summary>Runs on the fixed engine, or on the one <see cref="GptqOptions.Device"/> selects: under
    /// <see cref="ComputeDevice.Auto"/> the GPU takes layers of at least <see cref="RoundToNearestQuantizer.AutoGpuMinimumWeights"/>
    /// weights whose options its sweep covers and that carry no sparsity mask.</summary>
    private GptqTensor Run(DenseTensor weight, double[] hessian, SparsityMask? mask, CompressionContext context)
    {
        if (_engine is not null)
        {
            return Run(_engine, weight, hessian, mask, context);
        }

        bool worthIt = mask is null && weight.Length >= RoundToNearestQuantizer.AutoGpuMinimumWeights && GpuGptqEngine.Supports(Options);
        if (GpuSelection.Select(Options.Device, worthIt, "gptq") is not { } gpu)
        {
            return Run(CpuGptqEngine.Instance, weight, hessian, mask, context);
        }

        GpuGptqEngine.ThrowIfUnsupported(Options);
        lock (gpu.SyncRoot)
        {
            using ScopedAcceleratorBinding binding = gpu.Accelerator.BindScoped();
            return Run(new GpuGptqEngine(gpu), weight, hessian, mask, context);
        }
    }

    private GptqTensor Run(GptqEngine engine, DenseTensor weight, double[] hessian, SparsityMask? mask, CompressionContext context)
    {
        if (mask is not null && !engine.SupportsSparsityMask)
        {
            throw new NotSupportedException(
                $"gptq: the {engine.Device} sweep cannot keep a sparsity mask (CompressionContext.Prior); use GptqQuantizer on the CPU for pruned weights.");
        }

        var clock = Stopwatch.StartNew();
        HadamardRotation? rotation = Options.Rotation is { } rotationParameters ? new HadamardRotation(rotationParameters) : null;
        if (rotation is not null)
        {
            // MR-GPTQ: the whole sweep, scales and objective included, happens in the rotated basis; the objective is
            // the same there, since ‖(W − Q)Xᵀ‖ = ‖(W − Q)Rᵀ·(XRᵀ)ᵀ‖ for orthonormal R.
            weight = rotation.RotateWeight(weight, context.CancellationToken);
            hessian = rotation.RotateHessian(hessian, weight.Columns);
        }

        int rows = weight.Rows, columns = weight.Columns;
        RtnOptions rtn = Options.Quantization;
        var format = (GroupedFormat)rtn.Format;
        Granularity granularity = rtn.EffectiveGranularity;
        var layout = new ScaleLayout(granularity, rows, columns);
        int groupSize = Math.Max(layout.SegmentWidth, 1), groups = layout.SegmentsPerRow;
        bool perGroup = granularity is PerGroupGranularity;
        bool staticGroups = Options.StaticGroups && perGroup;
        // Blocks hold whole groups, so a group's first column sees every earlier error of its row already applied.
        int block = perGroup ? (Options.BlockSize >= groupSize ? Options.BlockSize / groupSize * groupSize : groupSize) : Options.BlockSize;
        block = Math.Max(1, Math.Min(block, Math.Max(columns, 1)));
        var parallel = new ParallelOptions { CancellationToken = context.CancellationToken };

        float tensorScale = format.TensorScaleFor(weight.Length == 0 ? 0 : MathF.Abs(TensorPrimitives.MaxMagnitude(weight.Span)));

        // Dead inputs: no calibration signal, so their weights cannot matter to the objective; they are zeroed, and H
        // gets a unit diagonal there (in the permuted copy below) so it stays invertible.
        var diagonal = new double[columns];
        var isDead = new bool[columns];
        int dead = 0;
        for (int j = 0; j < columns; j++)
        {
            diagonal[j] = hessian[j * columns + j];
            if (diagonal[j] == 0)
            {
                diagonal[j] = 1;
                isDead[j] = true;
                dead++;
            }
        }

        // The mask as one flag per weight (original order): false where the prior stage pruned.
        bool[]? kept = null;
        if (mask is not null)
        {
            byte[] bits = mask.ToBytes();
            kept = new bool[rows * columns];
            for (int i = 0; i < kept.Length; i++)
            {
                kept[i] = ((bits[i >> 3] >> (i & 7)) & 1) != 0;
            }
        }

        var parameters = new SegmentParameters[rows * groups];
        if (staticGroups)
        {
            Parallel.For(0, rows, parallel, () => new float[columns], (r, _, row) =>
            {
                weight.Span.Slice(r * columns, columns).CopyTo(row);
                for (int j = 0; j < columns; j++)
                {
                    row[j] = isDead[j] || (kept is not null && !kept[r * columns + j]) ? 0 : row[j];
                }

                for (int s = 0; s < groups; s++)
                {
                    (int start, int length) = layout.Segment(s);
                    parameters[r * groups + s] = format.ChooseSegment(row.AsSpan(start, length), tensorScale, rtn);
                }

                return row;
            }, _ => { });
        }

        // Act-order: most-active inputs first (a stable sort, so equal diagonals keep their order and runs are reproducible).
        int[] order = Options.ActOrder
            ? Enumerable.Range(0, columns).OrderByDescending(j => diagonal[j]).ToArray()
            : Enumerable.Range(0, columns).ToArray();
        float[] wp = GC.AllocateUninitializedArray<float>(rows * columns);
        Parallel.For(0, rows, r =>
        {
            ReadOnlySpan<float> source = weight.Span.Slice(r * columns, columns);
            Span<float> target = wp.AsSpan(r * columns, columns);
            for (int k = 0; k < columns; k++)
            {
                target[k] = isDead[order[k]] ? 0 : source[order[k]];
            }
        });

        bool[]? keep = kept is null ? null : Permute(kept, rows, columns, order);
        double[] hp = PermuteSymmetric(hessian, columns, order);
        for (int k = 0; k < columns; k++)
        {
            hp[k * columns + k] = diagonal[order[k]];
        }

        int[] groupOfColumn = staticGroups ? order.Select(j => j / groupSize).ToArray() : [];

        var phase = Stopwatch.StartNew();
        (GptqFactor factor, double lambda, double percent, int attempts) = Factorize(engine, hp, columns, context);
        TimeSpan factorization = phase.Elapsed;
        phase.Restart();
        var codes = new byte[rows * columns];
        var columnLoss = new double[columns];
        using (factor)
        {
            var problem = new GptqSweepProblem(format, rtn, rows, columns, block, groupSize, groups, wp, groupOfColumn, parameters, tensorScale,
                codes, columnLoss) { Keep = keep };
            engine.Sweep(problem, factor, context);
        }

        TimeSpan sweep = phase.Elapsed;

        // Static groups are contiguous in the original order: store that order. Otherwise store the processing order,
        // where dynamic groups are contiguous.
        int[] stored = order;
        if (staticGroups && Options.ActOrder)
        {
            codes = Permute(codes, rows, columns, Inverse(order));
            stored = Enumerable.Range(0, columns).ToArray();
        }

        QuantizedTensor quantized = Pack(format, rtn, granularity, rows, columns, codes, parameters, tensorScale);

        // The sweep left Q (dequantized, processing order) in wp: δ = W − Q in processing order, with the undamped H
        // permuted alike (dead inputs back to their zero diagonal: their rows and columns of H are zero, so their δ
        // does not count, as in the original order).
        for (int k = 0; k < columns; k++)
        {
            hp[k * columns + k] = hessian[order[k] * columns + order[k]];
        }

        double[] delta = GC.AllocateUninitializedArray<double>(rows * columns);
        Parallel.For(0, rows, r =>
        {
            ReadOnlySpan<float> original = weight.Span.Slice(r * columns, columns), approximation = wp.AsSpan(r * columns, columns);
            Span<double> target = delta.AsSpan(r * columns, columns);
            for (int k = 0; k < columns; k++)
            {
                target[k] = (double)original[order[k]] - approximation[k];
            }
        });

        phase.Restart();
        double objective = rows == 0 || columns == 0 ? 0 : engine.SumOfQuadraticForms(delta, rows, columns, hp, context.CancellationToken) / 2;
        TimeSpan objectiveTime = phase.Elapsed;
        var losses = new double[columns];
        for (int k = 0; k < columns; k++)
        {
            losses[order[k]] = columnLoss[k];
        }

        var report = new GptqReport(objective, losses, losses.Sum(), lambda, percent, attempts, dead, order, clock.Elapsed)
        {
            Device = engine.Device,
            FactorizationTime = factorization,
            SweepTime = sweep,
            ObjectiveTime = objectiveTime,
        };
        return new GptqTensor(quantized, stored, report, Options.Rotation, mask);
    }

    /// <summary>U with UᵀU = (H + λI)⁻¹ (in the engine's memory), raising λ geometrically while the factorization fails.</summary>
    private (GptqFactor Factor, double Lambda, double Percent, int Attempts) Factorize(GptqEngine engine, double[] h, int columns, CompressionContext context)
    {
        double meanDiagonal = 0;
        for (int j = 0; j < columns; j++)
        {
            meanDiagonal += h[j * columns + j];
        }

        meanDiagonal /= Math.Max(columns, 1);
        double percent = Options.DampeningPercent;
        for (int attempt = 1; ; attempt++)
        {
            double lambda = percent * meanDiagonal;
            if (engine.TryFactorize(h, columns, lambda, context.CancellationToken) is { } upper)
            {
                if (attempt > 1)
                {
                    context.Logger.LogInformation("gptq {Layer}: H + λI factorized with λ = {Percent:G3}·mean(diag H) after {Attempts} attempts.",
                        context.LayerName ?? "(unnamed layer)", percent, attempt);
                }

                return (upper, lambda, percent, attempt);
            }

            if (attempt >= Options.MaxDampeningAttempts)
            {
                throw new InvalidOperationException(
                    $"gptq{(context.LayerName is null ? "" : $" {context.LayerName}")}: the input Hessian is not positive definite even with " +
                    $"dampening λ = {percent:G3}·mean(diag H) after {attempt} Cholesky attempts (growth ×{Options.DampeningGrowth:G3}). " +
                    "Collect more calibration samples, or raise DampeningPercent or MaxDampeningAttempts.");
            }

            context.Logger.LogWarning("gptq {Layer}: Cholesky of H + λI failed with λ = {Percent:G3}·mean(diag H); retrying with {Next:G3}.",
                context.LayerName ?? "(unnamed layer)", percent, percent * Options.DampeningGrowth);
            percent *= Options.DampeningGrowth;
        }
    }

    private static QuantizedTensor Pack(GroupedFormat format, RtnOptions rtn, Granularity granularity, int rows, int columns, byte[] codes,
        SegmentParameters[] parameters, float tensorScale)
    {
        int stride = format.PackedRowLength(columns);
        var packed = new byte[rows * stride];
        Parallel.For(0, rows, r => format.PackRow(codes.AsSpan(r * columns, columns), packed.AsSpan(r * stride, stride)));
        float[] scales = Array.ConvertAll(parameters, p => p.Scale);
        byte[]? zeros = rtn.Symmetric ? null : Array.ConvertAll(parameters, p => p.Zero);
        return new QuantizedTensor(format, granularity, rows, columns, packed, stride, scales, format.ScaleEncodingFor(rtn), zeros, tensorScale);
    }

    /// <summary>result[r, k] = source[r, order[k]].</summary>
    private static T[] Permute<T>(T[] source, int rows, int columns, int[] order)
    {
        T[] result = GC.AllocateUninitializedArray<T>(source.Length);
        Parallel.For(0, rows, r =>
        {
            int offset = r * columns;
            for (int k = 0; k < columns; k++)
            {
                result[offset + k] = source[offset + order[k]];
            }
        });

        return result;
    }

    private static double[] PermuteSymmetric(double[] h, int n, int[] order)
    {
        double[] result = GC.AllocateUninitializedArray<double>(h.Length);
        Parallel.For(0, n, a =>
        {
            int source = order[a] * n;
            for (int b = 0; b < n; b++)
            {
                result[a * n + b] = h[source + order[b]];
            }
        });

        return result;
    }

    /// <summary>Names GPTQ in the weight checks of the explicit-Hessian entry point, which has no accumulator to check.</summary>
    private sealed class WeightOnly : ICompressor
    {
        public static WeightOnly Instance { get; } = new();

        public string Name => "gptq";

        public CalibrationRequirements Requirements => CalibrationRequirements.None;

        public CompressedTensor Compress(DenseTensor weight, CompressionContext context) => throw new NotSupportedException();
    }

    private static int[] Inverse(int[] order)
    {
        var inverse = new int[order.Length];
        for (int k = 0; k < order.Length; k++)
        {
            inverse[order[k]] = k;
        }

        return inverse;
    }
}
