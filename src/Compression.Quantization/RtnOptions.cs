// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization;

/// <summary>
/// Options of round-to-nearest quantization: the format, which weights share a scale, and how scales are chosen and
/// stored. Immutable; every property validates when set (so <c>with</c> validates too), and rules that need the
/// weight's shape run when the quantizer sees the weight.
/// </summary>
/// <example>
/// <code>
/// var w4 = RtnOptions.W4Group128;                                  // INT4 symmetric, groups of 128
/// var w4mse = w4 with { Clipping = ClippingSearch.Default };       // plus the GPTQ-style range search
/// CompressedTensor q = w4mse.CreateCompressor().Compress(weight, CompressionContext.Default);
/// </code>
/// </example>
public sealed record RtnOptions
{
    /// <summary>INT8, symmetric, one scale per output row.</summary>
    public static RtnOptions W8PerChannel { get; } = new() { Format = NumberFormat.Int8, Granularity = Quantization.Granularity.PerChannel };

    /// <summary>INT4, symmetric, groups of 128 along the input dimension (the W4A16 weight scheme).</summary>
    public static RtnOptions W4Group128 { get; } = new() { Format = NumberFormat.Int4, Granularity = Quantization.Granularity.PerGroup(128) };

    /// <summary>FP8 E4M3, one scale per output row (the FP8 weight scheme).</summary>
    public static RtnOptions Fp8PerChannel { get; } = new() { Format = NumberFormat.Fp8E4M3, Granularity = Quantization.Granularity.PerChannel };

    /// <summary>FP8 E4M3 with one scale per 128×128 block (DeepSeek-V3-style checkpoints).</summary>
    public static RtnOptions Fp8Block128 { get; } = new() { Format = NumberFormat.Fp8E4M3, Granularity = Quantization.Granularity.PerBlock(128, 128) };

    /// <summary>OCP MXFP4: E2M1 elements, E8M0 scale per 32.</summary>
    public static RtnOptions Mxfp4 { get; } = new() { Format = NumberFormat.Mxfp4 };

    /// <summary>NVFP4: E2M1 elements, E4M3 scale per 16, float32 tensor scale.</summary>
    public static RtnOptions Nvfp4 { get; } = new() { Format = NumberFormat.Nvfp4 };

    /// <summary>NF4 with blocks of 64 and double-quantized block constants (QLoRA).</summary>
    public static RtnOptions Nf4 { get; } = new() { Format = NumberFormat.Nf4 };

    /// <summary>The number format. Default <see cref="NumberFormat.Int8"/>.</summary>
    public NumberFormat Format
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Format));
    } = NumberFormat.Int8;

    /// <summary>Which weights share a scale; null (default) for the format's own (per-channel for integer, FP and
    /// ternary formats; the fixed blocks of MX, NVFP4 and NF4, which accept nothing else).</summary>
    public Granularity? Granularity { get; init; }

    /// <summary>Symmetric (zero point 0, default) or asymmetric (a zero point per group); asymmetric exists for
    /// integer formats only.</summary>
    public bool Symmetric { get; init; } = true;

    /// <summary>The symmetric integer grid. Default <see cref="Quantization.SymmetricRange.Restricted"/>.</summary>
    public SymmetricRange SymmetricRange
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(SymmetricRange), value, "Restricted or Full.");
    } = SymmetricRange.Restricted;

    /// <summary>Range search per group (integer formats) or scale search (FP, MX, NVFP4; see <see cref="ClippingSearch"/>);
    /// null (default) uses the format's own scale rule.</summary>
    public ClippingSearch? Clipping { get; init; }

    /// <summary>How scales of integer, FP and ternary formats are stored: Float32 (default), Float16 or BFloat16.
    /// Formats with their own scale type (MX: E8M0, NVFP4: E4M3, NF4: double-quantized) ignore it.</summary>
    public ScaleEncoding ScaleStorage
    {
        get;
        init => field = value is ScaleEncoding.Float32 or ScaleEncoding.Float16 or ScaleEncoding.BFloat16
            ? value
            : throw new ArgumentOutOfRangeException(nameof(ScaleStorage), value, "Scales are stored as Float32, Float16 or BFloat16.");
    } = ScaleEncoding.Float32;

    /// <summary>FP formats: clamp out-of-range values to ±max (default, as OCP MX requires) or overflow IEEE-style
    /// (E5M2 to ±∞, E4M3 to NaN). Scales put every weight in range, so saturation only matters when a scale rounds
    /// down; saturating is the safe choice there.</summary>
    public bool Saturate { get; init; } = true;

    /// <summary>Where the quantizer runs: <see cref="ComputeDevice.Auto"/> (default: the GPU for large weights when
    /// one is present, else the CPU), <see cref="ComputeDevice.Cpu"/> or <see cref="ComputeDevice.Gpu"/>. The codes
    /// are the same on both.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined device.</exception>
    public ComputeDevice Device
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Device), value, "Auto, Cpu or Gpu.");
    }

    /// <summary>The granularity in effect: <see cref="Granularity"/> or the format's default.</summary>
    public Granularity EffectiveGranularity => Granularity ?? Format.DefaultGranularity;

    /// <summary>Creates the quantizer.</summary>
    public RoundToNearestQuantizer CreateCompressor() => new(this);

    /// <summary>Checks the combination of options against a weight's shape.</summary>
    /// <exception cref="ArgumentException">The combination is invalid; the message says why and what to change.</exception>
    public void Validate(int rows, int columns)
    {
        Format.ValidateOptions(this);
        switch (Granularity)   // fixed-block formats take partial blocks at the end of short rows
        {
            case PerGroupGranularity g when g.Size > columns && columns > 0:
                throw new ArgumentException(
                    $"Group size {g.Size} exceeds the {columns} columns of the weight; use a group size of at most {columns} or per-channel.",
                    nameof(Granularity));
            case PerBlockGranularity b when (b.Columns > columns && columns > 0) || (b.Rows > rows && rows > 0):
                throw new ArgumentException(
                    $"Block {b.Rows}×{b.Columns} exceeds the {rows}×{columns} weight.", nameof(Granularity));
        }
    }
}
