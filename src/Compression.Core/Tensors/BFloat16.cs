// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.InteropServices;

namespace Compression.Tensors;

/// <summary>
/// The bfloat16 storage format (1 sign bit, 8 exponent bits, 7 mantissa bits): the upper half of an IEEE 754
/// float32. .NET 10 has no public BFloat16, so checkpoints' BF16 tensors are read through this two-byte struct.
/// </summary>
/// <remarks>
/// Conversion to <see cref="float"/> is exact. Conversion from <see cref="float"/> rounds to nearest, ties to even,
/// overflows to infinity like IEEE narrowing, and keeps NaN a (quiet) NaN of the same sign.
/// </remarks>
[StructLayout(LayoutKind.Sequential, Size = 2)]
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    private readonly ushort _bits;

    private BFloat16(ushort bits) => _bits = bits;

    /// <summary>The raw 16-bit pattern.</summary>
    public ushort RawValue => _bits;

    /// <summary>Whether this value is a NaN.</summary>
    public bool IsNaN => (_bits & 0x7F80) == 0x7F80 && (_bits & 0x007F) != 0;

    /// <summary>Creates a value from its raw 16-bit pattern.</summary>
    public static BFloat16 FromRawValue(ushort bits) => new(bits);

    /// <summary>Widens exactly: the 16 bits become the upper half of a float32.</summary>
    public static explicit operator float(BFloat16 value) => BitConverter.Int32BitsToSingle(value._bits << 16);

    /// <summary>Narrows with round-to-nearest-even; NaN stays NaN.</summary>
    public static explicit operator BFloat16(float value) => new(NumericConversions.SingleToBFloat16Bits(value));

    /// <inheritdoc/>
    public bool Equals(BFloat16 other) => _bits == other._bits;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _bits;

    /// <summary>Bitwise equality (so NaN equals the same NaN pattern, and +0 differs from −0).</summary>
    public static bool operator ==(BFloat16 left, BFloat16 right) => left._bits == right._bits;

    /// <summary>Bitwise inequality.</summary>
    public static bool operator !=(BFloat16 left, BFloat16 right) => left._bits != right._bits;

    /// <inheritdoc/>
    public override string ToString() => ((float)this).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
