// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using Compression.Quantization;

namespace Compression;

/// <summary>How <see cref="Quantizer"/> chooses each layer's codes.</summary>
public enum QuantizationMethod
{
    /// <summary>Round to nearest: no calibration data.</summary>
    RoundToNearest,

    /// <summary>GPTQ with Hessians from calibration data, block by block.</summary>
    Gptq,
}

/// <summary>
/// What <see cref="Quantizer"/> does to a model: the format, the method,
/// which linear layers, and per-layer overrides. Weight-only: activations stay float32.
/// </summary>
/// <remarks>
/// Patterns match module names (<c>model.layers.0.mlp.down_proj</c>): <c>Linear</c> matches every linear layer, a
/// pattern starting with <c>re:</c> is a regular expression that must match the whole name, anything else is a glob
/// (<c>*</c> any run of characters, <c>?</c> one) over the whole name. A target or override pattern that matches no
/// linear layer is an error, so a typo cannot silently leave a model unquantized.
/// </remarks>
/// <example>
/// <code>
/// var options = QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq, Ignore = ["lm_head", "re:.*\\.0\\.mlp\\..*"] };
/// </code>
/// </example>
public sealed record QuantizerOptions
{
    /// <summary>INT8 weights per output channel (symmetric), float32 activations.</summary>
    public static QuantizerOptions W8A16 { get; } = new() { Quantization = RtnOptions.W8PerChannel };

    /// <summary>INT4 weights in groups of 128 (symmetric), the GPTQ/AWQ default.</summary>
    public static QuantizerOptions W4A16 { get; } = new() { Quantization = RtnOptions.W4Group128 };

    /// <summary>INT3 weights in groups of 128 (symmetric).</summary>
    public static QuantizerOptions W3A16 { get; } = new() { Quantization = RtnOptions.W4Group128 with { Format = NumberFormat.Int3 } };

    /// <summary>FP8 E4M3 weights with a float32 scale per output channel.</summary>
    public static QuantizerOptions Fp8A16 { get; } = new() { Quantization = RtnOptions.Fp8PerChannel };

    /// <summary>OCP MXFP4 weights (E2M1, E8M0 scale per 32).</summary>
    public static QuantizerOptions Mxfp4A16 { get; } = new() { Quantization = RtnOptions.Mxfp4 };

    /// <summary>NVFP4 weights (E2M1, E4M3 scale per 16, float32 tensor scale).</summary>
    public static QuantizerOptions Nvfp4A16 { get; } = new() { Quantization = RtnOptions.Nvfp4 };

    /// <summary>The presets by name: W8A16, W4A16, W3A16, FP8A16, MXFP4A16, NVFP4A16 (case-insensitive).</summary>
    /// <exception cref="ArgumentException">No preset has that name.</exception>
    public static QuantizerOptions Preset(string name) => name?.ToUpperInvariant() switch
    {
        "W8A16" => W8A16,
        "W4A16" => W4A16,
        "W3A16" => W3A16,
        "FP8A16" => Fp8A16,
        "MXFP4A16" => Mxfp4A16,
        "NVFP4A16" => Nvfp4A16,
        _ => throw new ArgumentException($"No preset '{name}'; presets: W8A16, W4A16, W3A16, FP8A16, MXFP4A16, NVFP4A16.", nameof(name)),
    };

    /// <summary>The format, granularity and scale options. Default <see cref="RtnOptions.W4Group128"/>.</summary>
    public RtnOptions Quantization
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Quantization));
    } = RtnOptions.W4Group128;

    /// <summary>Round-to-nearest (default) or GPTQ (needs calibration data).</summary>
    public QuantizationMethod Method
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Method), value, "RoundToNearest or Gptq.");
    }

    /// <summary>GPTQ's settings (block size, dampening, act-order, static groups, MR-GPTQ rotation); its
    /// <see cref="GptqOptions.Quantization"/> is replaced by each layer's format.</summary>
    public GptqOptions Gptq
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Gptq));
    } = new();

    /// <summary>Which linear layers to quantize. Default: every one (<c>Linear</c>).</summary>
    public IReadOnlyList<string> Targets
    {
        get;
        init => field = Check(value, nameof(Targets));
    } = ["Linear"];

    /// <summary>Linear layers left in float32. Default: the head (<c>lm_head</c>); embeddings are not linear layers
    /// and are never quantized.</summary>
    public IReadOnlyList<string> Ignore
    {
        get;
        init => field = Check(value, nameof(Ignore));
    } = ["lm_head"];

    /// <summary>Per-layer formats: the first pattern that matches a layer gives its options.</summary>
    public IReadOnlyList<KeyValuePair<string, RtnOptions>> Overrides
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Overrides));
    } = [];

    /// <summary>Whether a layer's name matches a pattern (see the remarks).</summary>
    public static bool Matches(string pattern, string name)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(name);
        if (pattern == "Linear")
        {
            return true;
        }

        string regex = pattern.StartsWith("re:", StringComparison.Ordinal)
            ? pattern[3..]
            : Regex.Escape(pattern).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal);
        return Regex.IsMatch(name, $"^(?:{regex})$", RegexOptions.CultureInvariant);
    }

    /// <summary>The options for one layer: the first matching override, else <see cref="Quantization"/>.</summary>
    public RtnOptions OptionsFor(string layer) =>
        Overrides.FirstOrDefault(o => Matches(o.Key, layer)).Value ?? Quantization;

    private static IReadOnlyList<string> Check(IReadOnlyList<string> patterns, string name)
    {
        ArgumentNullException.ThrowIfNull(patterns, name);
        foreach (string pattern in patterns)
        {
            if (string.IsNullOrEmpty(pattern))
            {
                throw new ArgumentException("Patterns must not be empty.", name);
            }

            if (pattern.StartsWith("re:", StringComparison.Ordinal))
            {
                try
                {
                    _ = new Regex(pattern[3..]);
                }
                catch (ArgumentException e)
                {
                    throw new ArgumentException($"'{pattern}' is not a valid regular expression: {e.Message}", name, e);
                }
            }
        }

        return patterns.ToArray();
    }
}
