// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Compression.Quantization.Formats;

namespace Compression.Quantization.Primitives;

/// <summary>Span kernels of small-float quantization (FP8, FP6, FP4), bit-identical to <see cref="MiniFloatCodec"/>.</summary>
public static class MiniFloatPrimitives
{
    /// <summary>
    /// <c>codes[i] = codec.Encode(x[i] / scale, saturate)</c>, or the code of +0 for every element when
    /// <paramref name="scale"/> is 0 (an all-zero group).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="codes"/> is shorter than <paramref name="x"/>.</exception>
    public static void Quantize(MiniFloatCodec codec, ReadOnlySpan<float> x, float scale, bool saturate, Span<byte> codes)
    {
        if (codes.Length < x.Length)
        {
            throw new ArgumentException($"Codes hold {codes.Length}; {x.Length} needed.", nameof(codes));
        }

        if (scale == 0)
        {
            codes[..x.Length].Clear();
            return;
        }

        int i = 0;
        if (Vector256.IsHardwareAccelerated && saturate)
        {
            var kernel = new VectorEncoder(codec);
            Vector256<float> s = Vector256.Create(scale);
            for (; i <= x.Length - 32; i += 32)
            {
                Vector256<int> a = kernel.Encode(Vector256.Create(x.Slice(i, 8)) / s);
                Vector256<int> b = kernel.Encode(Vector256.Create(x.Slice(i + 8, 8)) / s);
                Vector256<int> c = kernel.Encode(Vector256.Create(x.Slice(i + 16, 8)) / s);
                Vector256<int> d = kernel.Encode(Vector256.Create(x.Slice(i + 24, 8)) / s);
                Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, d)).AsByte().CopyTo(codes.Slice(i));
            }
        }

        for (; i < x.Length; i++)
        {
            codes[i] = codec.Encode(x[i] / scale, saturate);
        }
    }

    /// <summary><c>destination[i] = codec.Decode(codes[i]) · scale</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="codes"/>.</exception>
    public static void Dequantize(MiniFloatCodec codec, ReadOnlySpan<byte> codes, float scale, Span<float> destination)
    {
        if (destination.Length < codes.Length)
        {
            throw new ArgumentException($"Destination holds {destination.Length}; {codes.Length} needed.", nameof(destination));
        }

        Span<float> table = stackalloc float[256];
        for (int c = 0; c < 1 << codec.Bits; c++)
        {
            table[c] = codec.Decode((byte)c) * scale;
        }

        for (int i = 0; i < codes.Length; i++)
        {
            destination[i] = table[codes[i]];
        }
    }

    /// <summary>
    /// The saturating encoder on eight lanes: the same arithmetic as <see cref="MiniFloatCodec.RoundToGrid"/> and
    /// <see cref="MiniFloatCodec.EncodeGridValue"/> (scale by the binade's power of two, round half to even, clamp),
    /// so every lane equals the scalar codec bit for bit. NaN lanes follow the scalar rules too.
    /// </summary>
    private readonly struct VectorEncoder
    {
        private readonly int _mantissaBits;
        private readonly int _bias;
        private readonly int _minNormalExponent;
        private readonly float _maxNormal;
        private readonly int _nanCode;
        private readonly int _signBit;

        public VectorEncoder(MiniFloatCodec codec)
        {
            _mantissaBits = codec.MantissaBits;
            _bias = codec.Bias;
            _minNormalExponent = codec.MinNormalExponent;
            _maxNormal = codec.MaxNormal;
            _signBit = 1 << (codec.ExponentBits + codec.MantissaBits);
            _nanCode = codec.EncodeGridValue(float.NaN);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<int> Encode(Vector256<float> x)
        {
            Vector256<uint> bits = x.AsUInt32();
            Vector256<uint> magnitudeBits = bits & Vector256.Create(0x7FFF_FFFFu);
            Vector256<int> isNaN = Vector256.GreaterThan(magnitudeBits, Vector256.Create(0x7F80_0000u)).AsInt32();
            Vector256<int> sign = Vector256.ConditionalSelect(
                Vector256.Equals(bits & Vector256.Create(0x8000_0000u), Vector256<uint>.Zero).AsInt32(), Vector256<int>.Zero, Vector256.Create(_signBit));

            // Binade exponent, clamped below at the smallest normal exponent (subnormals share its step); far
            // out-of-range values (including ∞) are clamped to 2·max first so the powers of two stay in range.
            Vector256<float> a = Vector256.Min(magnitudeBits.AsSingle(), Vector256.Create(2 * _maxNormal));
            Vector256<int> exponent = Vector256.Max((a.AsInt32() >>> 23) - Vector256.Create(127), Vector256.Create(_minNormalExponent));
            Vector256<float> up = ((Vector256.Create(_mantissaBits + 127) - exponent) << 23).AsSingle();
            Vector256<float> down = ((exponent - Vector256.Create(_mantissaBits - 127)) << 23).AsSingle();
            Vector256<float> rounded = Vector256.Min(Vector256.Round(a * up) * down, Vector256.Create(_maxNormal));

            // Code of the grid value: normal → (e + bias, top mantissa bits); subnormal → value / smallest step.
            Vector256<int> roundedBits = rounded.AsInt32();
            Vector256<int> roundedExponent = (roundedBits >>> 23) - Vector256.Create(127);
            Vector256<int> normal = ((roundedExponent + Vector256.Create(_bias)) << _mantissaBits) |
                                    ((roundedBits >>> (23 - _mantissaBits)) & Vector256.Create((1 << _mantissaBits) - 1));
            Vector256<int> subnormal = Vector256.ConvertToInt32(rounded * Vector256.Create(MathF.ScaleB(1f, _mantissaBits - _minNormalExponent)));
            Vector256<int> isNormal = Vector256.GreaterThanOrEqual(roundedExponent, Vector256.Create(_minNormalExponent));
            Vector256<int> code = Vector256.ConditionalSelect(isNormal, normal, subnormal) | sign;
            Vector256<int> nan = Vector256.Create(_nanCode) | (_nanCode == 0 ? Vector256<int>.Zero : sign);
            return Vector256.ConditionalSelect(isNaN, nan, code);
        }
    }
}
