// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.Intrinsics;
using System.Runtime.CompilerServices;
using Compression.Quantization.Formats;
using Compression.Quantization.Primitives;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// OCP Microscaling v1.0: blocks of 32 consecutive weights of a row share an E8M0 scale X = 2^(floor(log2(amax)) −
/// emax), emax being the exponent of the element format's largest normal; elements are x / X rounded half to even and
/// clamped to the element's max normal (MX conversions always saturate). MXINT8 elements are two's complement int8
/// with an implicit 2^-6, clamped to ±127.
/// </summary>
internal sealed class MicroscalingFormat : GroupedFormat
{
    public const int BlockSize = 32;
    private const int Int8MaxExponent = 0;      // 127·2^-6 = 1.984375: floor(log2) = 0

    public MicroscalingFormat(MiniFloatCodec? element) => Element = element;

    /// <summary>The element format; null for MXINT8.</summary>
    public MiniFloatCodec? Element { get; }

    public override string Name => Element switch
    {
        null => "mxint8",
        { Bits: 4 } => "mxfp4",
        MiniFloatCodec e => "mx" + e.Name,
    };

    internal override int CodeBits => Element?.Bits ?? 8;

    public override Granularity DefaultGranularity { get; } = Granularity.PerGroup(BlockSize);

    internal override bool HasFixedGranularity => true;

    private protected override ScaleEncoding Encoding(RtnOptions options) => ScaleEncoding.E8M0;

    private protected override bool HasRowKernel => Element is not null;

    private protected override bool QuantizeRow(ReadOnlySpan<float> row, float tensorScale, Span<float> scales, Span<byte> codes) =>
        BlockPrimitives.QuantizeRow(row, BlockSize, Element!.Value, new SharedExponentRule(Element.Value.MaxExponent), tensorScale, scales, codes);

    /// <summary>X = 2^(floor(log2(amax)) − emax); the elements are divided by X itself.</summary>
    private readonly struct SharedExponentRule(int elementMaxExponent) : IBlockScaleRule
    {
        public float Scale(float absMax, float tensorScale) => E8M0.PowerOfTwo(E8M0.SharedExponent(absMax, elementMaxExponent));

        public float Divisor(float scale, float tensorScale) => scale;

        // x / 2^e and x · 2^-e are the same exact scaling, rounded the same way: multiply instead of divide.
        public bool DivisorIsPowerOfTwo => true;

        public Vector256<float> Scales(Vector256<float> absMax, float tensorScale)
        {
            // The exponent field e gives floor(log2(amax)) − emax = e − 127 − emax, clamped below at −127 (which also
            // covers amax = 0 and float32-subnormal amax, e = 0); it cannot exceed 127 since e ≤ 254 and emax ≥ 0.
            Vector256<int> field = absMax.AsInt32() >>> 23;
            Vector256<int> shared = Vector256.Max(field - Vector256.Create(127 + elementMaxExponent), Vector256.Create(-127));
            Vector256<int> normal = (shared + Vector256.Create(127)) << 23;
            return Vector256.ConditionalSelect(Vector256.Equals(shared, Vector256.Create(-127)), Vector256.Create(0x0040_0000), normal).AsSingle();
        }

        public Vector256<float> Divisors(Vector256<float> scales, float tensorScale) => scales;
    }

    private protected override SegmentParameters ChooseGroup(in GroupStats stats, float tensorScale, RtnOptions options) =>
        new(E8M0.PowerOfTwo(E8M0.SharedExponent(stats.AbsMax, Element?.MaxExponent ?? Int8MaxExponent)), 0, 1f, 0);

    internal override bool SupportsScaleSearch => true;

    private protected override bool ScalesAreLocal(RtnOptions options) => options.Clipping is null;

    /// <summary>The OCP rule floors log2(amax), so the largest elements of a block can saturate; twice the scale cannot.</summary>
    private protected override float? ScaleAbove(float scale) => scale < E8M0.PowerOfTwo(127) ? scale * 2 : null;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private protected override void EncodeSegment(ReadOnlySpan<float> x, in SegmentParameters parameters, RtnOptions options, Span<byte> codes)
    {
        float scale = parameters.Scale;
        if (Element is MiniFloatCodec element)
        {
            MiniFloatPrimitives.QuantizeFinite(element, x, scale, saturate: true, codes);
        }
        else
        {
            // x / X is exact (X is a power of two), and so is the product by 64: int8 codes on the 2^-6 grid.
            for (int i = 0; i < x.Length; i++)
            {
                codes[i] = (byte)(sbyte)Math.Clamp(MathF.Round(x[i] / scale * 64f, MidpointRounding.ToEven), -127f, 127f);
            }
        }
    }

    internal override bool SupportsSegmentCodec => true;

    private protected override void DecodeSegment(ReadOnlySpan<byte> codes, QuantizedTensor tensor, int group, Span<float> destination) =>
        Decode(codes, tensor.ScalesArray[group], destination);

    internal override void DecodeSegment(ReadOnlySpan<byte> codes, in SegmentParameters parameters, RtnOptions options, Span<float> destination) =>
        Decode(codes, parameters.Scale, destination);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Decode(ReadOnlySpan<byte> codes, float scale, Span<float> destination)
    {
        if (Element is MiniFloatCodec element)
        {
            MiniFloatPrimitives.Dequantize(element, codes, scale, destination);
        }
        else
        {
            for (int i = 0; i < codes.Length; i++)
            {
                destination[i] = (sbyte)codes[i] / 64f * scale;
            }
        }
    }
}
