// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Quantization;

/// <summary>How a quantized tensor stores its scales.</summary>
public enum ScaleEncoding
{
    /// <summary>IEEE float32, 32 bits per scale.</summary>
    Float32,

    /// <summary>IEEE float16, 16 bits per scale (the scale is rounded before quantizing, so it is exact as stored).</summary>
    Float16,

    /// <summary>bfloat16, 16 bits per scale (rounded before quantizing).</summary>
    BFloat16,

    /// <summary>OCP MX E8M0: a biased power-of-two exponent, 8 bits per scale; code 0xFF is NaN.</summary>
    E8M0,

    /// <summary>FP8 E4M3 block scales (NVFP4), 8 bits per scale, plus one float32 tensor scale.</summary>
    Fp8E4M3,

    /// <summary>Double quantization (NF4): int8 codes of the scales minus their mean, with one float32 scale per 256
    /// scales and the float32 mean.</summary>
    DoubleQuantizedInt8,
}
