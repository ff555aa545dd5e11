// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Quantization.Gguf;

/// <summary>
/// The ggml tensor types a GGUF file written here can hold; the numeric values are ggml's <c>ggml_type</c> ids, which
/// the file stores.
/// </summary>
public enum GgmlType
{
    /// <summary>IEEE float32.</summary>
    F32 = 0,

    /// <summary>IEEE float16 (round to nearest even).</summary>
    F16 = 1,

    /// <summary>Blocks of 32: a float16 scale d and 32 four-bit codes c, value (c − 8)·d; 18 bytes per block.</summary>
    Q4_0 = 2,

    /// <summary>Blocks of 32: float16 scale d and minimum m, 32 four-bit codes c, value c·d + m; 20 bytes per block.</summary>
    Q4_1 = 3,

    /// <summary>Blocks of 32: a float16 scale d, 32 five-bit codes c (low four bits in nibbles, fifth bits in a 32-bit
    /// mask), value (c − 16)·d; 22 bytes per block.</summary>
    Q5_0 = 6,

    /// <summary>Blocks of 32: a float16 scale d and 32 int8 codes q, value q·d; 34 bytes per block.</summary>
    Q8_0 = 8,
}
