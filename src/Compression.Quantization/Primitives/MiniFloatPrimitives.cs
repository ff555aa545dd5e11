// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Quantize(MiniFloatCodec codec, ReadOnlySpan<float> x, float scale, bool saturate, Span<byte> codes) =>
        Quantize<MayBeNaN>(codec, x, scale, saturate, codes);

    /// <summary><see cref="Quantize(MiniFloatCodec, ReadOnlySpan{float}, float, bool, Span{byte})"/> for finite
    /// <paramref name="x"/> (the quantizers check finiteness first): the encoder skips its NaN select.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    internal static void QuantizeFinite(MiniFloatCodec codec, ReadOnlySpan<float> x, float scale, bool saturate, Span<byte> codes) =>
        Quantize<Finite>(codec, x, scale, saturate, codes);

    private struct MayBeNaN;

    private struct Finite;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quantize<TInput>(MiniFloatCodec codec, ReadOnlySpan<float> x, float scale, bool saturate, Span<byte> codes)
        where TInput : struct
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
            ref float source = ref MemoryMarshal.GetReference(x);
            ref byte target = ref MemoryMarshal.GetReference(codes);
            for (; i <= x.Length - 32; i += 32)
            {
                nuint n = (nuint)i;
                Vector256<int> a = Encode<TInput>(kernel, Vector256.LoadUnsafe(ref source, n) / s);
                Vector256<int> b = Encode<TInput>(kernel, Vector256.LoadUnsafe(ref source, n + 8) / s);
                Vector256<int> c = Encode<TInput>(kernel, Vector256.LoadUnsafe(ref source, n + 16) / s);
                Vector256<int> d = Encode<TInput>(kernel, Vector256.LoadUnsafe(ref source, n + 24) / s);
                Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, d)).AsByte().StoreUnsafe(ref target, n);
            }

            // Blocks of 16 (NVFP4) and 32 (MX) and row tails: eight at a time.
            for (; i <= x.Length - 8; i += 8)
            {
                Vector256<short> half = Vector256.Narrow(Encode<TInput>(kernel, Vector256.LoadUnsafe(ref source, (nuint)i) / s), Vector256<int>.Zero);
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref target, i), Vector256.Narrow(half, Vector256<short>.Zero).AsUInt64().ToScalar());
            }
        }

        for (; i < x.Length; i++)
        {
            codes[i] = codec.Encode(x[i] / scale, saturate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Encode<TInput>(in VectorEncoder encoder, Vector256<float> y)
        where TInput : struct =>
        typeof(TInput) == typeof(Finite) ? encoder.EncodeNotNaN(y) : encoder.Encode(y);

    /// <summary><c>destination[i] = codec.Decode(codes[i]) · scale</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="codes"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Dequantize(MiniFloatCodec codec, ReadOnlySpan<byte> codes, float scale, Span<float> destination)
    {
        if (destination.Length < codes.Length)
        {
            throw new ArgumentException($"Destination holds {destination.Length}; {codes.Length} needed.", nameof(destination));
        }

        float[] table = codec.DecodeTable;
        int mask = table.Length - 1;
        for (int i = 0; i < codes.Length; i++)
        {
            destination[i] = table[codes[i] & mask] * scale;
        }
    }

    /// <summary>
    /// The saturating encoder on eight lanes, in integer arithmetic on the float32 bits: normal results round the
    /// mantissa half to even by adding 0x7FF…F plus the kept lowest bit, then rebias the exponent; subnormal results
    /// come from adding 2^(e_min − M + 23), whose ulp is the subnormal step, so the FPU's own round-half-even does it;
    /// anything past the largest code clamps to it (rounding is monotone, so that is saturation). The exhaustive and
    /// span tests hold it to <see cref="MiniFloatCodec.Encode"/> bit for bit, NaN included.
    /// </summary>
    internal readonly struct VectorEncoder
    {
        private readonly int _mantissaBits;
        private readonly int _rebias;
        private readonly uint _minNormalBits;
        private readonly float _subnormalMagic;
        private readonly int _maxCode;
        private readonly int _nanCode;
        private readonly int _signBit;
        private readonly bool _nanHasSign;

        public VectorEncoder(MiniFloatCodec codec)
        {
            _mantissaBits = codec.MantissaBits;
            _rebias = (127 - codec.Bias) << codec.MantissaBits;
            _minNormalBits = (uint)(codec.MinNormalExponent + 127) << 23;
            _subnormalMagic = MathF.ScaleB(1f, codec.MinNormalExponent - codec.MantissaBits + 23);
            _maxCode = codec.MaxCode;
            _signBit = 1 << (codec.ExponentBits + codec.MantissaBits);
            _nanCode = codec.Specials switch
            {
                SpecialValues.NaNOnly => _signBit - 1,
                SpecialValues.Ieee => (((1 << codec.ExponentBits) - 1) << codec.MantissaBits) | (1 << (codec.MantissaBits - 1)),
                _ => 0,
            };
            _nanHasSign = codec.Specials != SpecialValues.None;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<int> Encode(Vector256<float> y)
        {
            Vector256<int> bits = y.AsInt32();
            Vector256<int> magnitude = bits & Vector256.Create(0x7FFF_FFFF);
            Vector256<int> sign = (bits >> 31) & Vector256.Create(_signBit);
            Vector256<int> isNaN = Vector256.GreaterThan(magnitude, Vector256.Create(0x7F80_0000));
            Vector256<int> nan = Vector256.Create(_nanCode) | (_nanHasSign ? sign : Vector256<int>.Zero);
            return Vector256.ConditionalSelect(isNaN, nan, EncodeMagnitude(magnitude) | sign);
        }

        /// <summary><see cref="Encode"/> for inputs that are never NaN (quotients of finite weights by positive
        /// scales, ±∞ included): the NaN select is skipped.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<int> EncodeNotNaN(Vector256<float> y)
        {
            Vector256<int> bits = y.AsInt32();
            return EncodeMagnitude(bits & Vector256.Create(0x7FFF_FFFF)) | ((bits >> 31) & Vector256.Create(_signBit));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private Vector256<int> EncodeMagnitude(Vector256<int> magnitude)
        {
            int shift = 23 - _mantissaBits;
            Vector256<int> rounded = magnitude + Vector256.Create((1 << (shift - 1)) - 1) + ((magnitude >>> shift) & Vector256<int>.One);
            Vector256<int> normal = (rounded >>> shift) - Vector256.Create(_rebias);
            Vector256<float> magic = Vector256.Create(_subnormalMagic);
            Vector256<int> subnormal = (magnitude.AsSingle() + magic).AsInt32() - magic.AsInt32();
            Vector256<int> isNormal = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create((int)_minNormalBits));
            return Vector256.Min(Vector256.ConditionalSelect(isNormal, normal, subnormal), Vector256.Create(_maxCode));
        }
    }
}
