// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization.Rotation;

namespace Compression.Quantization;

/// <summary>
/// Options of GPTQ ("GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers", Frantar,
/// Ashkboos, Hoefler and Alistarh, 2022): the target format and grouping (an <see cref="RtnOptions"/>), the block size
/// of the lazy updates, the dampening of the Hessian and the column order. Immutable; every property validates when
/// set, and <see cref="Validate(int, int)"/> checks the combination against a weight's shape.
/// </summary>
/// <remarks>
/// <para>GPTQ processes every output row independently with the same inverse Hessian, so a scale must belong to one
/// row: per-channel or per-group granularity (the fixed blocks of MX formats and NVFP4 are per-group). Per-tensor and
/// per-block scales would couple rows that GPTQ updates independently, and are refused. NF4 (its block constants are
/// double-quantized across the whole tensor) has no per-group code/decode from parameters alone and is refused too.
/// Ternary formats work: a group's γ (absmean) or Δ and α (TWN) are chosen from its current values, like any scale.</para>
/// <para>A group size that does not divide the columns gives a shorter tail group, as in round-to-nearest.</para>
/// </remarks>
/// <example>
/// <code>
/// var gptq = new GptqQuantizer(GptqOptions.W4Group128 with { ActOrder = true });
/// var context = CompressionContext.Default with { InputHessian = hessian };   // a HessianAccumulator fed with the layer's inputs
/// GptqTensor q = gptq.Quantize(weight, context);
/// Console.WriteLine(q.Report!.Objective);
/// </code>
/// </example>
public sealed record GptqOptions
{
    /// <summary>INT4 symmetric, groups of 128, the reference settings otherwise (the W4A16 GPTQ scheme).</summary>
    public static GptqOptions W4Group128 { get; } = new() { Quantization = RtnOptions.W4Group128 };

    /// <summary>INT8 symmetric per-channel.</summary>
    public static GptqOptions W8PerChannel { get; } = new() { Quantization = RtnOptions.W8PerChannel };

    /// <summary>The target format, granularity (per-channel or per-group), symmetry, clipping search and scale storage.
    /// Default <see cref="RtnOptions.W4Group128"/>.</summary>
    public RtnOptions Quantization
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Quantization));
    } = RtnOptions.W4Group128;

    /// <summary>Columns quantized with immediate error feedback before the remaining columns receive one batched update
    /// (the paper's B). Default 128, at least 1. Only speed depends on it (up to float rounding); with groups it is
    /// rounded to a multiple of the group size so that a group never straddles two blocks.</summary>
    public int BlockSize
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(BlockSize), value, "BlockSize must be at least 1.");
    } = 128;

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
    /// failure, before GPTQ gives up with <see cref="InvalidOperationException"/>. Default 6, in [1, 30].</summary>
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

    /// <summary>Quantize columns in descending order of diag(H) (the reference's <c>act_order</c>, "desc_act"). With groups
    /// and without <see cref="StaticGroups"/>, groups are consecutive in that order, so a group's columns are scattered
    /// in the original order (see <see cref="GptqTensor.GroupIndex"/>). Default false.</summary>
    public bool ActOrder { get; init; }

    /// <summary>Compute every group's scale up front from the original weight's groups in the original column order
    /// (the reference's <c>static_groups</c>), so groups stay contiguous in the original order even with
    /// <see cref="ActOrder"/>. No effect per-channel. Default false.</summary>
    public bool StaticGroups { get; init; }

    /// <summary>
    /// MR-GPTQ: quantize in a block-wise Hadamard basis. The weight becomes W·Rᵀ and the Hessian R·H·Rᵀ (R block-diagonal
    /// orthonormal, acting on the inputs), GPTQ runs there, and the result carries the rotation so inference applies R
    /// to the activations (x' = R·x) while <see cref="CompressedTensor.Decompress"/> still returns the weight in the
    /// original basis. Use the format's group size (16 for NVFP4, 32 for MX: <see cref="HadamardRotation.ForFormat"/>),
    /// which spreads an outlier over the group that shares its scale. Default null (no rotation).
    /// </summary>
    public HadamardRotationParameters? Rotation { get; init; }

    /// <summary>Where the sweep runs: <see cref="ComputeDevice.Auto"/> (default: the GPU for layers of at least a
    /// million weights when one is present and its sweep covers the format, else the CPU), <see cref="ComputeDevice.Cpu"/>
    /// or <see cref="ComputeDevice.Gpu"/>. The GPU sweep runs in float32 with a different summation order, so a weight
    /// within rounding of a decision boundary can take the other code (docs/gptq.md); <see cref="GptqReport.Device"/>
    /// says which ran. <see cref="Quantization"/>'s own device setting is not used by GPTQ.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined device.</exception>
    public ComputeDevice Device
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Device), value, "Auto, Cpu or Gpu.");
    }

    /// <summary>Creates the quantizer.</summary>
    public GptqQuantizer CreateCompressor() => new(this);

    /// <summary>Checks the combination of options, independently of a weight's shape.</summary>
    /// <exception cref="ArgumentException">The format or granularity cannot be used with GPTQ; the message says why.</exception>
    public void Validate()
    {
        NumberFormat format = Quantization.Format;
        if (format is not GroupedFormat grouped || !grouped.SupportsSegmentCodec)
        {
            throw new ArgumentException(
                $"GPTQ quantizes a group at a time against updated weights and needs a format whose groups are coded from their own " +
                $"parameters; {format} is not (NF4 double-quantizes its block constants across the tensor). Use an integer, FP, MX, NVFP4 " +
                "or ternary format.",
                nameof(Quantization));
        }

        switch (Quantization.EffectiveGranularity)
        {
            case PerChannelGranularity or PerGroupGranularity:
                break;
            default:
                throw new ArgumentException(
                    $"GPTQ updates each output row independently, so scales must be per-channel or per-group; got {Quantization.EffectiveGranularity}.",
                    nameof(Quantization));
        }
    }

    /// <summary>Checks the combination of options against a weight's shape (<see cref="Validate()"/> plus the format's own
    /// rules and the group size).</summary>
    /// <exception cref="ArgumentException">The combination is invalid; the message says why and what to change.</exception>
    public void Validate(int rows, int columns)
    {
        Validate();
        Quantization.Validate(rows, columns);
        if (Rotation is { } rotation)
        {
            rotation.Validate();
            if (columns % rotation.BlockSize != 0)
            {
                throw new ArgumentException(
                    $"The Hadamard rotation's block of {rotation.BlockSize} must divide the weight's {columns} columns.", nameof(Rotation));
            }
        }
    }
}
