// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Quantization.Gpu;

/// <summary>The element coding of the general kernels.</summary>
internal enum GeneralElement
{
    IntegerSymmetric,
    IntegerAsymmetric,
    MiniFloat,
    Nf4,
    TernaryAbsMean,
    TernaryThreshold,
}

/// <summary>
/// What the general kernels (<see cref="GeneralKernels"/>, <see cref="Nf4Kernels"/>) need to know of a format and
/// layout, as plain numbers. Groups may span several rows (<see cref="BlockRows"/>): per-tensor and per-block scales.
/// </summary>
internal readonly struct GeneralSpec
{
    public GeneralElement Element { get; init; }
    public int CodeBits { get; init; }

    // Kernel parameters must be blittable, which bool is not: flags are stored as ints.
    private readonly int _trits;
    private readonly int _saturate;

    /// <summary>Codes are trits packed five to a byte (ternary) rather than a bitstream.</summary>
    public bool Trits
    {
        get => _trits != 0;
        init => _trits = value ? 1 : 0;
    }

    public int Rows { get; init; }
    public int Columns { get; init; }
    public int Stride { get; init; }
    public int SegmentWidth { get; init; }
    public int SegmentsPerRow { get; init; }

    /// <summary>Rows per group: 1 (per-channel, per-group), the block height, or all rows (per-tensor).</summary>
    public int BlockRows { get; init; }

    public int GroupCount { get; init; }

    /// <summary>0: float32, 1: float16, 2: bfloat16 (see <see cref="GeneralKernels.RoundScale"/>).</summary>
    public int ScaleStorage { get; init; }

    // Integer grid: codes clamp to [Low, High]; symmetric codes are offset by Offset.
    public int Offset { get; init; }
    public int Low { get; init; }
    public int High { get; init; }
    public float SymmetricMax { get; init; }

    // Small float elements.
    public int MantissaBits { get; init; }
    public int ExponentBits { get; init; }
    public int Bias { get; init; }
    public int MinNormalExponent { get; init; }
    public int MaxCode { get; init; }
    public int SignBit { get; init; }
    public float MaxNormal { get; init; }
    public bool Saturate
    {
        get => _saturate != 0;
        init => _saturate = value ? 1 : 0;
    }

    /// <summary>The magnitude code an overflow gets when not saturating (∞ for E5M2, NaN for E4M3, max otherwise).</summary>
    public int OverflowCode { get; init; }

    /// <summary>0: every code finite; 1: S.1…1 is NaN (E4M3); 2: IEEE infinities and NaNs (E5M2).</summary>
    public int Specials { get; init; }

    // Clipping search (integer formats); ClipSteps &lt; 0 when off.
    public int ClipSteps { get; init; }
    public int ClipGrid { get; init; }
    public double ClipNorm { get; init; }
}
