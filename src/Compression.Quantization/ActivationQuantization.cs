// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization;

namespace Compression;

/// <summary>How a linear layer's input activations are quantized.</summary>
public enum ActivationGranularity
{
    /// <summary>One scale per token: per row of the input, over the layer's input features.</summary>
    PerToken,

    /// <summary>One scale for the whole input tensor (not supported yet: refused by <see cref="ActivationQuantization"/>).</summary>
    PerTensor,
}

/// <summary>
/// Declared quantization of a linear layer's input activations, as compressed-tensors' <c>input_activations</c>
/// describes it. Only dynamic per-token FP8 E4M3 is supported: the scale of each token's row is computed at run time
/// (max |x| / 448), so no activation scale is calibrated or stored.
/// </summary>
/// <remarks>
/// <para>A checkpoint that declares it (compressed-tensors' <c>FP8_DYNAMIC</c> scheme) is run by vLLM with FP8
/// activations. This library has no FP8 kernels: it <em>simulates</em> the quantization (each row is scaled, rounded to
/// E4M3 with ties to even and saturation, and scaled back before the matmul), so that accuracy measured on the model is
/// the accuracy of that scheme.</para>
/// <para>Static (calibrated) activation scales, per-tensor activation scales and INT8 activations are not implemented;
/// asking for them throws an <see cref="ArgumentException"/> naming the property.</para>
/// </remarks>
/// <example>
/// <code>
/// var options = QuantizerOptions.Fp8A16 with { InputActivations = ActivationQuantization.Fp8PerTokenDynamic };
/// </code>
/// </example>
public sealed record ActivationQuantization
{
    /// <summary>FP8 E4M3, one scale per token, computed at run time: compressed-tensors' <c>FP8_DYNAMIC</c> activations.</summary>
    public static ActivationQuantization Fp8PerTokenDynamic { get; } = new();

    /// <summary>The element format. Only <see cref="NumberFormat.Fp8E4M3"/> (the default) is supported.</summary>
    /// <exception cref="ArgumentException">Another format.</exception>
    public NumberFormat Format
    {
        get;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(Format));
            field = ReferenceEquals(value, NumberFormat.Fp8E4M3)
                ? value
                : throw new ArgumentException($"Activations can only be quantized to fp8-e4m3, not {value.Name}.", nameof(Format));
        }
    } = NumberFormat.Fp8E4M3;

    /// <summary>Which values share a scale. Only <see cref="ActivationGranularity.PerToken"/> (the default) is supported.</summary>
    /// <exception cref="ArgumentException">Another granularity.</exception>
    public ActivationGranularity Granularity
    {
        get;
        init => field = value == ActivationGranularity.PerToken
            ? value
            : throw new ArgumentException($"Only per-token activation scales are supported, not {value}.", nameof(Granularity));
    } = ActivationGranularity.PerToken;

    /// <summary>Whether scales are computed at run time. Must be true (the default): static, calibrated activation scales
    /// are not implemented.</summary>
    /// <exception cref="ArgumentException">False.</exception>
    public bool Dynamic
    {
        get;
        init => field = value
            ? value
            : throw new ArgumentException("Static (calibrated) activation scales are not supported; only dynamic per-token scales are.", nameof(Dynamic));
    } = true;
}
