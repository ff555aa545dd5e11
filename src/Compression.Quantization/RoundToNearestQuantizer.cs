// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Gpu.Runtime;
using Compression.Quantization.Gpu;
using Compression.Tensors;
using ILGPU.Runtime;

namespace Compression.Quantization;

/// <summary>
/// Round-to-nearest quantization of a weight matrix in any <see cref="NumberFormat"/>: a scale per group from the
/// group's range, then every weight to its nearest code (ties to even). Data-free: needs no calibration.
/// </summary>
/// <remarks>
/// Non-finite weights are rejected (<see cref="ArgumentException"/> naming the position): every format's scale would
/// otherwise become NaN or ∞ for the whole group. All-zero groups get scale 0 and decode to exact zeros. A prior
/// stage's <see cref="CompressedTensor.SparsityMask"/> is kept: every format here codes 0 exactly, so pruned weights
/// stay zero.
/// <para>Device: <see cref="RtnOptions.Device"/>. Under <see cref="ComputeDevice.Auto"/> a weight of at least
/// <see cref="AutoGpuMinimumWeights"/> elements whose options the GPU kernels cover is quantized on the GPU when the
/// process has one (<see cref="GpuSelection"/>); the GPU result equals the CPU's bit for bit, so only the speed
/// changes. The overload that quantizes into a <see cref="QuantizedTensorStorage"/> always runs on the CPU (it exists
/// to reuse host memory in streaming pipelines).</para>
/// </remarks>
public sealed class RoundToNearestQuantizer : ICompressor
{
    /// <summary>Below this many weights <see cref="ComputeDevice.Auto"/> stays on the CPU: the upload and download of
    /// a smaller weight cost more than the CPU SIMD path takes for it.</summary>
    public const long AutoGpuMinimumWeights = 1L << 20;

    /// <summary>Creates a quantizer.</summary>
    public RoundToNearestQuantizer(RtnOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
    }

    /// <summary>The options.</summary>
    public RtnOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "rtn";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.None;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Quantize(weight, context);
    }

    /// <summary>Quantizes with a typed result (same checks as <see cref="Compress"/>).</summary>
    public QuantizedTensor Quantize(DenseTensor weight, CompressionContext? context = null)
    {
        context ??= CompressionContext.Default;
        ArgumentNullException.ThrowIfNull(weight);
        context.CancellationToken.ThrowIfCancellationRequested();
        if (weight.Rank != 2)
        {
            throw new ArgumentException($"rtn: the weight must be a matrix [out, in]; got shape [{string.Join(", ", weight.Shape.ToArray())}].", nameof(weight));
        }

        Options.Validate(weight.Rows, weight.Columns);
        GpuContext? gpu = GpuSelection.Select(Options.Device,
            weight.Length >= AutoGpuMinimumWeights && GpuRoundToNearestQuantizer.Supports(Options), "rtn");
        if (gpu is not null)
        {
            return NamingTheLayer(context, () => QuantizeOnGpu(gpu, weight));
        }

        // Finiteness is checked in the statistics pass (the first read of every weight), not by a pass of its own:
        // at memory speed an extra read would cost a third of the run.
        return NamingTheLayer(context, () => Options.Format.Quantize(weight, Options, context.CancellationToken));
    }

    private QuantizedTensor QuantizeOnGpu(GpuContext gpu, DenseTensor weight)
    {
        // The GPU quantizer refuses options it has no kernel for (NotSupportedException): with ComputeDevice.Gpu that
        // is the answer the caller asked for; Auto never gets here with such options.
        var quantizer = new GpuRoundToNearestQuantizer(gpu, Options);
        lock (gpu.SyncRoot)
        {
            using ScopedAcceleratorBinding binding = gpu.Accelerator.BindScoped();
            return quantizer.Quantize(weight);
        }
    }

    /// <summary>
    /// Quantizes into reusable <paramref name="storage"/> (same checks as <see cref="Compress"/>): the result views the
    /// storage, so nothing is allocated for row-local scales. The storage must have been created for these options and
    /// this weight's shape; quantizing into it again overwrites every result that views it.
    /// </summary>
    /// <exception cref="ArgumentException">The storage was made for other options or another shape, or the weight is invalid.</exception>
    public QuantizedTensor Quantize(DenseTensor weight, QuantizedTensorStorage storage, CompressionContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(storage);
        if (weight.Rank != 2)
        {
            throw new ArgumentException($"rtn: the weight must be a matrix [out, in]; got shape [{string.Join(", ", weight.Shape.ToArray())}].", nameof(weight));
        }

        if (storage.Options != Options || storage.Rows != weight.Rows || storage.Columns != weight.Columns)
        {
            throw new ArgumentException(
                $"rtn: the storage holds {storage.Rows}×{storage.Columns} results of {storage.Options.Format}; the weight is " +
                $"{weight.Rows}×{weight.Columns} and this quantizer's format is {Options.Format} (create the storage with these options and shape).",
                nameof(storage));
        }

        context ??= CompressionContext.Default;
        context.CancellationToken.ThrowIfCancellationRequested();
        Options.Validate(weight.Rows, weight.Columns);
        return NamingTheLayer(context, () => Options.Format.Quantize(weight, Options, context.CancellationToken, storage));
    }

    // The formats find a non-finite weight in their statistics pass, which knows no layer: a model-level run sets
    // CompressionContext.LayerName, and the message must say which layer was bad.
    private static QuantizedTensor NamingTheLayer(CompressionContext context, Func<QuantizedTensor> quantize)
    {
        try
        {
            return quantize();
        }
        catch (ArgumentException e) when (e.ParamName == "weight" && context.LayerName is { Length: > 0 } layer &&
                                          e.Message.StartsWith("rtn: ", StringComparison.Ordinal))
        {
            string message = e.Message[..^$" (Parameter '{e.ParamName}')".Length];
            throw new ArgumentException($"rtn ({layer}): {message["rtn: ".Length..]}", "weight", e);
        }
    }
}
