// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization.Formats;
using Compression.Quantization.Primitives;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// A small float element format (FP8, FP6, FP4) with a float scale per group: s = absmax / max normal, codes =
/// encode(x / s) with round-half-even and (by default) saturation, values = decode(code) · s.
/// </summary>
internal sealed class FloatFormat(MiniFloatCodec codec) : GroupedFormat
{
    public MiniFloatCodec Codec { get; } = codec;

    public override string Name => Codec.Name;

    internal override int CodeBits => Codec.Bits;

    private protected override SegmentParameters ChooseGroup(in GroupStats stats, float tensorScale, RtnOptions options) =>
        new(RoundScale(stats.AbsMax / Codec.MaxNormal, options.ScaleStorage), 0, 1f, 0);

    internal override bool SupportsScaleSearch => true;

    private protected override bool ScalesAreLocal(RtnOptions options) => options.Clipping is null;

    private protected override void EncodeSegment(ReadOnlySpan<float> x, in SegmentParameters parameters, RtnOptions options, Span<byte> codes) =>
        MiniFloatPrimitives.QuantizeFinite(Codec, x, parameters.Scale, options.Saturate, codes);

    internal override bool SupportsSegmentCodec => true;

    internal override void DecodeSegment(ReadOnlySpan<byte> codes, in SegmentParameters parameters, RtnOptions options, Span<float> destination) =>
        MiniFloatPrimitives.Dequantize(Codec, codes, parameters.Scale, destination);

    private protected override void DecodeSegment(ReadOnlySpan<byte> codes, QuantizedTensor tensor, int group, Span<float> destination) =>
        MiniFloatPrimitives.Dequantize(Codec, codes, tensor.ScalesArray[group], destination);
}
