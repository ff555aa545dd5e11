// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using Compression.Quantization;

namespace Compression;

/// <summary>How <c>Quantizer</c> chooses each layer's codes.</summary>
public enum QuantizationMethod
{
    /// <summary>Round to nearest: no calibration data.</summary>
    RoundToNearest,

    /// <summary>GPTQ with Hessians from calibration data, block by block.</summary>
    Gptq,
}

/// <summary>
/// What <c>Quantizer</c> does to a model: the format, the method,
/// which linear layers, and per-layer overrides. Weight-only by default: activations stay float32 unless
/// <see cref="InputActivations"/> declares dynamic per-token FP8 (<see cref="W8A8Fp8Dynamic"/>).
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

    /// <summary>INT4 weights in groups of 128, asymmetric (a scale and an INT4 zero point per group), as
    /// compressed-tensors' <c>W4A16_ASYM</c>.</summary>
    public static QuantizerOptions W4A16Asym { get; } = new() { Quantization = RtnOptions.W4Group128 with { Symmetric = false } };

    /// <summary>INT3 weights in groups of 128 (symmetric).</summary>
    public static QuantizerOptions W3A16 { get; } = new() { Quantization = RtnOptions.W4Group128 with { Format = NumberFormat.Int3 } };

    /// <summary>FP8 E4M3 weights with a float32 scale per output channel.</summary>
    public static QuantizerOptions Fp8A16 { get; } = new() { Quantization = RtnOptions.Fp8PerChannel };

    /// <summary>FP8 E4M3 weights with a float32 scale per output channel, and input activations quantized to FP8 E4M3
    /// dynamically, one scale per token computed at run time: compressed-tensors' <c>FP8_DYNAMIC</c> (llm-compressor's
    /// W8A8-FP8). The checkpoint declares the activations for vLLM; evaluation here simulates them.</summary>
    public static QuantizerOptions W8A8Fp8Dynamic { get; } = new()
    {
        Quantization = RtnOptions.Fp8PerChannel,
        InputActivations = ActivationQuantization.Fp8PerTokenDynamic,
    };

    /// <summary>OCP MXFP4 weights (E2M1, E8M0 scale per 32).</summary>
    public static QuantizerOptions Mxfp4A16 { get; } = new() { Quantization = RtnOptions.Mxfp4 };

    /// <summary>NVFP4 weights (E2M1, E4M3 scale per 16, float32 tensor scale).</summary>
    public static QuantizerOptions Nvfp4A16 { get; } = new() { Quantization = RtnOptions.Nvfp4 };

    /// <summary>
    /// The presets by the names users know from llm-compressor and compressed-tensors. Case is ignored, and <c>-</c> and
    /// <c>_</c> are interchangeable (<c>w4a16-asym</c> is <c>W4A16_ASYM</c>). Every preset but <c>FP8_DYNAMIC</c> is
    /// weight-only: activations stay float32.
    /// </summary>
    /// <remarks>
    /// <list type="table">
    /// <listheader><term>name</term><description>weights</description></listheader>
    /// <item><term><c>W8A16</c></term><description>INT8, symmetric, one scale per output channel (<see cref="W8A16"/>;
    /// compressed-tensors uses groups of 128 here).</description></item>
    /// <item><term><c>W4A16</c></term><description>INT4, symmetric, groups of 128 (<see cref="W4A16"/>).</description></item>
    /// <item><term><c>W4A16_ASYM</c></term><description>INT4, asymmetric, groups of 128 (<see cref="W4A16Asym"/>).</description></item>
    /// <item><term><c>W3A16</c></term><description>INT3, symmetric, groups of 128 (<see cref="W3A16"/>).</description></item>
    /// <item><term><c>FP8</c>, <c>FP8A16</c></term><description>FP8 E4M3, one float32 scale per output channel
    /// (<see cref="Fp8A16"/>).</description></item>
    /// <item><term><c>FP8_DYNAMIC</c>, <c>W8A8_FP8</c></term><description>FP8 E4M3 weights per output channel and
    /// dynamic per-token FP8 E4M3 input activations (<see cref="W8A8Fp8Dynamic"/>).</description></item>
    /// <item><term><c>MXFP4</c>, <c>MXFP4A16</c></term><description>OCP MXFP4: E2M1, E8M0 scale per 32
    /// (<see cref="Mxfp4A16"/>).</description></item>
    /// <item><term><c>NVFP4</c>, <c>NVFP4A16</c></term><description>NVFP4: E2M1, E4M3 scale per 16, float32 tensor scale
    /// (<see cref="Nvfp4A16"/>).</description></item>
    /// </list>
    /// <para>In llm-compressor <c>FP8</c>, <c>MXFP4</c> and <c>NVFP4</c> also quantize activations (FP8 with static
    /// per-tensor scales); here they name the weight scheme only. The other names that quantize activations (<c>W8A8</c>,
    /// <c>INT8</c>, <c>W4A8</c>, <c>W4AFP8</c>, <c>FP8_BLOCK</c>, <c>NVFP4A4</c>, any other <c>WnAm</c> with m &lt; 16)
    /// are refused with an <see cref="ArgumentException"/> that says so: they need INT8 or FP4 activations, static
    /// activation scales or block-granular weights, which are not implemented.</para>
    /// </remarks>
    /// <param name="name">The preset's name.</param>
    /// <exception cref="ArgumentException">No preset has that name, or the name asks for activation quantization.</exception>
    /// <example>
    /// <code>
    /// QuantizerOptions fp8 = QuantizerOptions.Preset("fp8");           // FP8 E4M3 weights per channel
    /// QuantizerOptions asym = QuantizerOptions.Preset("w4a16-asym");   // INT4 g128 with zero points
    /// </code>
    /// </example>
    public static QuantizerOptions Preset(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string key = name.ToUpperInvariant().Replace('-', '_');
        switch (key)
        {
            case "W8A16":
                return W8A16;
            case "W4A16":
                return W4A16;
            case "W4A16_ASYM":
                return W4A16Asym;
            case "W3A16":
                return W3A16;
            case "FP8" or "FP8A16":
                return Fp8A16;
            case "FP8_DYNAMIC" or "W8A8_FP8":
                return W8A8Fp8Dynamic;
            case "MXFP4" or "MXFP4A16":
                return Mxfp4A16;
            case "NVFP4" or "NVFP4A16":
                return Nvfp4A16;
        }

        if (QuantizesActivations(key))
        {
            throw new ArgumentException(
                $"The preset '{name}' quantizes activations in a way that is not implemented (only dynamic per-token FP8 " +
                $"activations are: FP8_DYNAMIC). Use one of {PresetNames}.",
                nameof(name));
        }

        throw new ArgumentException($"No preset '{name}'; presets: {PresetNames} (case and '-'/'_' ignored).", nameof(name));
    }

    private const string PresetNames = "W8A16, W4A16, W4A16_ASYM, W3A16, FP8 (= FP8A16), FP8_DYNAMIC (= W8A8_FP8), MXFP4 (= MXFP4A16), NVFP4 (= NVFP4A16)";

    /// <summary>Whether a normalized name (upper case, '_') is one of llm-compressor's schemes that quantize
    /// activations: the named ones, and WnAm, NVFP4Am, MXFP4Am with m below 16.</summary>
    private static bool QuantizesActivations(string key)
    {
        if (key is "INT8" or "W4AFP8" or "FP8_DYNAMIC" or "FP8_BLOCK" or "MXFP8")
        {
            return true;
        }

        Match match = Regex.Match(key, "^(?:W[0-9]+|NVFP4_?|MXFP4_?)A([0-9]{1,2})(?:_.*)?$", RegexOptions.CultureInvariant);
        return match.Success && int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) < 16;
    }

    /// <summary>The format, granularity and scale options. Default <see cref="RtnOptions.W4Group128"/>.</summary>
    public RtnOptions Quantization
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Quantization));
    } = RtnOptions.W4Group128;

    /// <summary>
    /// How the quantized layers' input activations are quantized, or null (the default) to keep them in floating point
    /// (weight-only). Applies to every targeted layer; a compressed-tensors checkpoint declares it as each group's
    /// <c>input_activations</c>, and the quantized model simulates it in its forward pass.
    /// </summary>
    public ActivationQuantization? InputActivations { get; init; }

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

    /// <summary>
    /// The layers these options quantize among a model's linear layers: those a target matches and no ignore does.
    /// </summary>
    /// <param name="linearLayers">The names of the model's linear layers.</param>
    /// <exception cref="ArgumentException">A target or override pattern matches no linear layer (a typo must not
    /// silently leave a model unquantized), or nothing is left to quantize.</exception>
    public string[] SelectTargets(IEnumerable<string> linearLayers)
    {
        ArgumentNullException.ThrowIfNull(linearLayers);
        string[] all = linearLayers.ToArray();
        foreach (string pattern in Targets.Concat(Overrides.Select(o => o.Key)))
        {
            if (!all.Any(name => Matches(pattern, name)))
            {
                throw new ArgumentException(
                    $"The pattern '{pattern}' matches no linear layer of the model (for example {string.Join(", ", all.Take(3))}).", "options");
            }
        }

        string[] targets = all.Where(name => Targets.Any(p => Matches(p, name)) && !Ignore.Any(p => Matches(p, name))).ToArray();
        return targets.Length > 0
            ? targets
            : throw new ArgumentException("The targets and ignores leave no linear layer to quantize.", "options");
    }

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
