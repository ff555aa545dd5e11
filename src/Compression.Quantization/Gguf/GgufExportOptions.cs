// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization.Gguf;

/// <summary>How <see cref="GgufExporter"/> converts a checkpoint.</summary>
public sealed record GgufExportOptions
{
    /// <summary>Q8_0 matrices (llama.cpp's <c>convert_hf_to_gguf.py --outtype q8_0</c>).</summary>
    public static GgufExportOptions Default { get; } = new();

    /// <summary>The type of every matrix (embedding, projections, output head). Vectors (norm weights) are always F32,
    /// as llama.cpp's converter keeps them; a matrix whose rows are not a whole number of 32-value blocks falls back to
    /// F16, as the converter does. Default Q8_0.</summary>
    public GgmlType TensorType { get; init; } = GgmlType.Q8_0;

    /// <summary>Data alignment in bytes (<c>general.alignment</c>); default 32, which readers assume without the key.</summary>
    public uint Alignment { get; init; } = GgufWriter.DefaultAlignment;

    /// <summary><c>general.name</c>; null takes the input folder's name.</summary>
    public string? Name { get; init; }

    /// <summary>Whether to write the tokenizer from the folder's tokenizer.json (default true). Without a
    /// tokenizer.json, or when false, <c>tokenizer.ggml.model</c> is <c>none</c>.</summary>
    public bool IncludeTokenizer { get; init; } = true;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(TensorType))
        {
            throw new ArgumentOutOfRangeException(nameof(TensorType), TensorType, "Not a supported ggml type (F32, F16, Q8_0, Q4_0, Q4_1, Q5_0).");
        }

        if (Alignment < 8 || (Alignment & (Alignment - 1)) != 0 || Alignment > 1u << 20)
        {
            throw new ArgumentOutOfRangeException(nameof(Alignment), Alignment, "The alignment must be a power of two from 8 to 1 MiB.");
        }

        if (Name is { Length: 0 })
        {
            throw new ArgumentOutOfRangeException(nameof(Name), Name, "The name must not be empty (null takes the folder's name).");
        }
    }
}
