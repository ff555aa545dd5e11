// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Linq;
using System.Threading;
using Compression.Quantization.Formats;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// A weight number format: how one element is coded and how scales are chosen and stored. Every format plugs into
/// <see cref="RoundToNearestQuantizer"/> through <see cref="RtnOptions.Format"/>.
/// </summary>
/// <remarks>See docs/formats.md for each format's definition, bit layout and a worked example.</remarks>
public abstract class NumberFormat
{
    private protected NumberFormat()
    {
    }

    /// <summary>INT8 (symmetric by default; asymmetric via <see cref="RtnOptions.Symmetric"/>).</summary>
    public static NumberFormat Int8 { get; } = new IntegerFormat(8);

    /// <summary>INT4.</summary>
    public static NumberFormat Int4 { get; } = new IntegerFormat(4);

    /// <summary>INT3.</summary>
    public static NumberFormat Int3 { get; } = new IntegerFormat(3);

    /// <summary>INT2.</summary>
    public static NumberFormat Int2 { get; } = new IntegerFormat(2);

    /// <summary>OCP FP8 E4M3 with a float scale per group.</summary>
    public static NumberFormat Fp8E4M3 { get; } = new FloatFormat(MiniFloatCodec.Fp8E4M3);

    /// <summary>OCP FP8 E5M2 with a float scale per group.</summary>
    public static NumberFormat Fp8E5M2 { get; } = new FloatFormat(MiniFloatCodec.Fp8E5M2);

    /// <summary>OCP FP6 E2M3 with a float scale per group.</summary>
    public static NumberFormat Fp6E2M3 { get; } = new FloatFormat(MiniFloatCodec.Fp6E2M3);

    /// <summary>OCP FP6 E3M2 with a float scale per group.</summary>
    public static NumberFormat Fp6E3M2 { get; } = new FloatFormat(MiniFloatCodec.Fp6E3M2);

    /// <summary>OCP FP4 E2M1 with a float scale per group.</summary>
    public static NumberFormat Fp4E2M1 { get; } = new FloatFormat(MiniFloatCodec.Fp4E2M1);

    /// <summary>OCP MXFP8 (E4M3 elements, E8M0 scale per 32).</summary>
    public static NumberFormat Mxfp8E4M3 { get; } = new MicroscalingFormat(MiniFloatCodec.Fp8E4M3);

    /// <summary>OCP MXFP8 (E5M2 elements, E8M0 scale per 32).</summary>
    public static NumberFormat Mxfp8E5M2 { get; } = new MicroscalingFormat(MiniFloatCodec.Fp8E5M2);

    /// <summary>OCP MXFP6 (E2M3 elements, E8M0 scale per 32).</summary>
    public static NumberFormat Mxfp6E2M3 { get; } = new MicroscalingFormat(MiniFloatCodec.Fp6E2M3);

    /// <summary>OCP MXFP6 (E3M2 elements, E8M0 scale per 32).</summary>
    public static NumberFormat Mxfp6E3M2 { get; } = new MicroscalingFormat(MiniFloatCodec.Fp6E3M2);

    /// <summary>OCP MXFP4 (E2M1 elements, E8M0 scale per 32).</summary>
    public static NumberFormat Mxfp4 { get; } = new MicroscalingFormat(MiniFloatCodec.Fp4E2M1);

    /// <summary>OCP MXINT8 (8-bit two's complement elements with an implicit 2^-6, E8M0 scale per 32).</summary>
    public static NumberFormat Mxint8 { get; } = new MicroscalingFormat(null);

    /// <summary>NVFP4: E2M1 elements, an FP8 E4M3 scale per 16, one float32 tensor scale.</summary>
    public static NumberFormat Nvfp4 { get; } = new Nvfp4Format();

    /// <summary>NF4 (QLoRA): 16 normal-quantile codes, absmax per 64, double-quantized absmax constants.</summary>
    public static NumberFormat Nf4 { get; } = new Nf4Format();

    /// <summary>Ternary {−1, 0, +1}·γ with γ = mean|w| (BitNet b1.58's absmean).</summary>
    public static NumberFormat TernaryAbsMean { get; } = new TernaryFormat(TernaryMethod.AbsMean);

    /// <summary>Ternary with threshold Δ = 0.7·mean|w| and α = mean of the kept |w| (TWN).</summary>
    public static NumberFormat TernaryThreshold { get; } = new TernaryFormat(TernaryMethod.Threshold);

    /// <summary>A stable identifier, e.g. "int4", "fp8-e4m3", "mxfp4", "nvfp4".</summary>
    public abstract string Name { get; }

    /// <summary>Bits of one element code as packed (scales excluded).</summary>
    public abstract double ElementBits { get; }

    /// <summary>The granularity used when <see cref="RtnOptions.Granularity"/> is null.</summary>
    public virtual Granularity DefaultGranularity => Granularity.PerChannel;

    /// <summary>The integer format with <paramref name="bits"/> bits.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bits"/> is outside 2–8.</exception>
    public static NumberFormat Int(int bits) => bits switch
    {
        8 => Int8,
        4 => Int4,
        3 => Int3,
        2 => Int2,
        _ => new IntegerFormat(bits),
    };

    /// <summary>Every named format, for tours and round-trip tests.</summary>
    public static NumberFormat[] All { get; } =
    [
        Int8, Int(7), Int(6), Int(5), Int4, Int3, Int2, Fp8E4M3, Fp8E5M2, Fp6E2M3, Fp6E3M2, Fp4E2M1,
        Mxfp8E4M3, Mxfp8E5M2, Mxfp6E2M3, Mxfp6E3M2, Mxfp4, Mxint8, Nvfp4, Nf4, TernaryAbsMean, TernaryThreshold,
    ];

    /// <summary>Resolves <see cref="Name"/>.</summary>
    /// <exception cref="ArgumentException">No format has that name.</exception>
    public static NumberFormat FromName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (NumberFormat format in All)
        {
            if (format.Name == name)
            {
                return format;
            }
        }

        if (name.StartsWith("int", StringComparison.Ordinal) && int.TryParse(name.AsSpan(3), out int bits))
        {
            return bits is >= 2 and <= 8
                ? Int(bits)
                : throw new ArgumentException($"Number format '{name}' has {bits} bits; integer formats have 2 to 8.", nameof(name));
        }

        throw new ArgumentException($"Unknown number format '{name}' (known: {string.Join(", ", All.Select(f => f.Name))}, or int2 to int8).", nameof(name));
    }

    /// <inheritdoc/>
    public override string ToString() => Name;

    /// <summary>Whether <see cref="DefaultGranularity"/> is part of the format's definition (MX, NVFP4, NF4).</summary>
    internal virtual bool HasFixedGranularity => false;

    /// <summary>Rejects options this format cannot honour.</summary>
    internal virtual void ValidateOptions(RtnOptions options)
    {
        if (HasFixedGranularity && options.Granularity is not null && options.Granularity != DefaultGranularity)
        {
            throw new ArgumentException(
                $"{Name} uses {DefaultGranularity} scaling along the input dimension by definition; leave Granularity unset.", nameof(options));
        }

        if (!options.Symmetric)
        {
            throw new ArgumentException($"{Name} is symmetric by definition; asymmetric quantization exists for integer formats only.",
                nameof(options));
        }

        if (options.Clipping is not null && this is not GroupedFormat { SupportsScaleSearch: true })
        {
            throw new ArgumentException($"The clipping (scale) search is implemented for integer, FP, MX and NVFP4 formats; {Name} does not take it.",
                nameof(options));
        }
    }

    /// <summary>Quantizes a finite matrix (already validated), into <paramref name="storage"/> when one is given.</summary>
    internal abstract QuantizedTensor Quantize(DenseTensor weight, RtnOptions options, CancellationToken cancellationToken,
        QuantizedTensorStorage? storage = null);

    /// <summary>Writes the dense reconstruction of <paramref name="tensor"/>.</summary>
    internal abstract void Dequantize(QuantizedTensor tensor, Span<float> destination);
}
