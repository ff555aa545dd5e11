// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Quantization;

namespace Compression.Tool.Commands;

/// <summary>One <c>--scheme</c> of <c>compress quantize</c>: the library preset it maps to and the method.</summary>
/// <param name="Name">The name on the command line.</param>
/// <param name="Options">The <see cref="QuantizerOptions"/> preset (with the method set).</param>
/// <param name="Description">One line for <c>--help</c>.</param>
internal sealed record QuantizationScheme(string Name, QuantizerOptions Options, string Description)
{
    /// <summary>Whether the scheme calibrates (GPTQ) and so needs <c>--calib</c> and libtorch.</summary>
    public bool IsGptq => Options.Method == QuantizationMethod.Gptq;

    /// <summary>Every scheme, in help order.</summary>
    public static IReadOnlyList<QuantizationScheme> All { get; } =
    [
        new("w4a16", QuantizerOptions.W4A16, "INT4 symmetric, groups of 128, round to nearest (streamed, no libtorch)"),
        new("w4a16-gptq", Gptq(QuantizerOptions.W4A16), "INT4 symmetric, groups of 128, GPTQ (needs --calib)"),
        new("w8a16", QuantizerOptions.W8A16, "INT8 symmetric, per output channel, round to nearest"),
        new("w8a16-gptq", Gptq(QuantizerOptions.W8A16), "INT8 symmetric, per output channel, GPTQ (needs --calib)"),
        new("fp8", QuantizerOptions.Fp8A16, "FP8 E4M3 weights, per-channel float32 scales; activations unquantized"),
        new("w8a8-fp8", QuantizerOptions.W8A8Fp8Dynamic,
            "FP8 E4M3 weights per channel + input activations declared FP8 E4M3, dynamic, one scale per token (compressed-tensors FP8_DYNAMIC; vLLM quantizes them at run time, eval simulates it)"),
        new("nvfp4", QuantizerOptions.Nvfp4A16, "NVFP4 weights (E2M1, E4M3 scale per 16, float32 tensor scale), round to nearest"),
        new("nvfp4-gptq", Gptq(QuantizerOptions.Nvfp4A16), "NVFP4 weights, GPTQ (needs --calib)"),
        new("mxfp4", QuantizerOptions.Mxfp4A16, "OCP MXFP4 weights (E2M1, E8M0 scale per 32), round to nearest"),
        new("mxfp4-gptq", Gptq(QuantizerOptions.Mxfp4A16), "OCP MXFP4 weights, GPTQ (needs --calib)"),
    ];

    /// <summary>The scheme called <paramref name="name"/> (case-insensitive, <c>_</c> for <c>-</c>); exit code 2 for an
    /// unknown name.</summary>
    public static QuantizationScheme Find(string name)
    {
        string key = name.Trim().Replace('_', '-').ToLowerInvariant();
        return All.FirstOrDefault(s => s.Name == key)
            ?? throw ToolException.Usage($"unknown scheme '{name}'; expected one of {string.Join(", ", All.Select(s => s.Name))}.");
    }

    private static QuantizerOptions Gptq(QuantizerOptions preset) => preset with { Method = QuantizationMethod.Gptq };
}
