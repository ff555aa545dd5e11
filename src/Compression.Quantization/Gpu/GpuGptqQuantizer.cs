// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Gpu.Calibration;
using Compression.Gpu.Runtime;
using Compression.Tensors;

namespace Compression.Quantization.Gpu;

/// <summary>
/// GPTQ with its sweep and objective on an accelerator (CUDA, OpenCL, or ILGPU's CPU simulator in tests): the same
/// algorithm, options and <see cref="GptqTensor"/> as <see cref="GptqQuantizer"/>.
/// </summary>
/// <remarks>
/// <para>On the device: the float64 factorization of H + λI and U (<see cref="Compression.Gpu.Numerics.GpuCholesky"/>,
/// retried with more dampening as on the CPU), the in-block sweep (a warp per row; the format's scale rule and element
/// coding are the GPU RTN kernels', equal to the CPU's bit for bit), the lazy updates W[:, end:] −= E·U[block, end:]
/// (a tiled float32 GEMM) and the float64 objective. On the host: dead inputs, act-order, static groups and
/// packing.</para>
/// <para>Results equal the CPU quantizer's up to float32 rounding order in the updates: a weight within rounding of a
/// decision boundary can take the other code. The tests hold at least 99.5% of codes equal and the objective within
/// 1e-4.</para>
/// <para>Formats: those the fast GPU RTN kernels cover (integer symmetric/asymmetric, FP8/FP6/FP4 with float32 scales,
/// MXFP8/MXFP6/MXFP4/MXINT8, NVFP4), per-channel or per-group. The clipping search, FP16/BF16 scale storage,
/// non-saturating FP and ternary formats run on the CPU quantizer only.</para>
/// </remarks>
public sealed class GpuGptqQuantizer : ICompressor
{
    private readonly GptqQuantizer _quantizer;

    /// <summary>Creates a quantizer on <paramref name="gpu"/>.</summary>
    /// <exception cref="ArgumentException">The options cannot be used with GPTQ (<see cref="GptqOptions.Validate()"/>).</exception>
    /// <exception cref="NotSupportedException">The format options have no GPU sweep (see the remarks); use <see cref="GptqQuantizer"/>.</exception>
    public GpuGptqQuantizer(GpuContext gpu, GptqOptions options)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        GpuGptqEngine.ThrowIfUnsupported(options);
        _quantizer = new GptqQuantizer(options, new GpuGptqEngine(gpu));
    }

    /// <summary>The options.</summary>
    public GptqOptions Options => _quantizer.Options;

    /// <inheritdoc/>
    public string Name => "gptq";

    /// <inheritdoc/>
    public CalibrationRequirements Requirements => CalibrationRequirements.InputHessian;

    /// <inheritdoc/>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context) => Quantize(weight, context);

    /// <summary>Quantizes with a typed result; the same checks and exceptions as <see cref="GptqQuantizer.Quantize(DenseTensor, CompressionContext)"/>.</summary>
    public GptqTensor Quantize(DenseTensor weight, CompressionContext context) => _quantizer.Quantize(weight, context);

    /// <summary>Quantizes against a Hessian accumulated on the device (<see cref="GpuHessianAccumulator"/>).</summary>
    /// <exception cref="ArgumentException">The Hessian's size does not match the weight's columns, it has seen no
    /// samples, or the weight or the options are invalid.</exception>
    public GptqTensor Quantize(DenseTensor weight, GpuHessianAccumulator hessian, CompressionContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(hessian);
        if (hessian.Columns != weight.Columns)
        {
            throw new ArgumentException($"gptq: the input Hessian is {hessian.Columns}×{hessian.Columns} but the weight has {weight.Columns} columns.",
                nameof(hessian));
        }

        if (hessian.SampleCount == 0)
        {
            throw new ArgumentException("gptq: the input Hessian has seen no samples.", nameof(hessian));
        }

        return _quantizer.Quantize(weight, hessian.GetHessian(), context);
    }

    /// <summary>Quantizes against an explicit Hessian (tests and benchmarks).</summary>
    internal GptqTensor Quantize(DenseTensor weight, double[] hessian, CompressionContext? context = null) =>
        _quantizer.Quantize(weight, hessian, context);
}
