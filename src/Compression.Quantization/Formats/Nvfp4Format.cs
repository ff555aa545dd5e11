// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Runtime.Intrinsics;
using Compression.Quantization.Formats;
using Compression.Quantization.Primitives;
using Compression.Tensors;

namespace Compression.Quantization;

/// <summary>
/// NVFP4, NVIDIA's recipe: a float32 tensor scale g = amax(W) / (448 · 6); blocks of 16 consecutive weights of a row
/// with an FP8 E4M3 scale s_b = E4M3(amax_b / (6 · g)) (round half to even, saturating); elements E2M1(x / (s_b · g)),
/// round half to even, saturating at ±6. Decoding is E2M1 · (s_b · g). See docs/formats.md.
/// </summary>
internal sealed class Nvfp4Format : GroupedFormat
{
    public const int BlockSize = 16;
    private static readonly float s_range = MiniFloatCodec.Fp8E4M3.MaxNormal * MiniFloatCodec.Fp4E2M1.MaxNormal;   // 2688

    public override string Name => "nvfp4";

    internal override int CodeBits => 4;

    public override Granularity DefaultGranularity { get; } = Granularity.PerGroup(BlockSize);

    internal override bool HasFixedGranularity => true;

    private protected override ScaleEncoding Encoding(RtnOptions options) => ScaleEncoding.Fp8E4M3;

    private protected override bool UsesTensorScale => true;

    private protected override float TensorScale(float tensorAbsMax) => tensorAbsMax / s_range;

    private protected override SegmentParameters ChooseGroup(in GroupStats stats, float tensorScale, RtnOptions options) =>
        new(default(BlockScaleRule).Scale(stats.AbsMax, tensorScale), 0, tensorScale, 0);

    internal override bool SupportsScaleSearch => true;

    private protected override bool ScalesAreLocal(RtnOptions options) => options.Clipping is null;

    /// <summary>The block scale is amax/(6·g) rounded to nearest E4M3, which may round down and saturate the block's
    /// largest element: the next E4M3 value up is a candidate too.</summary>
    private protected override float? ScaleAbove(float scale)
    {
        byte code = MiniFloatCodec.Fp8E4M3.EncodeGridValue(scale);
        return (code & 0x7F) < 0x7E ? MiniFloatCodec.Fp8E4M3.Decode((byte)(code + 1)) : null;
    }

    private protected override bool HasRowKernel => true;

    private protected override bool QuantizeRow(ReadOnlySpan<float> row, float tensorScale, Span<float> scales, Span<byte> codes) =>
        BlockPrimitives.QuantizeRow(row, BlockSize, MiniFloatCodec.Fp4E2M1, default(BlockScaleRule), tensorScale, scales, codes);

    /// <summary>s_b = E4M3(amax_b / (6·g)); elements are divided by s_b·g.</summary>
    private readonly struct BlockScaleRule : IBlockScaleRule
    {
        public float Scale(float absMax, float tensorScale) =>
            tensorScale > 0 ? MiniFloatCodec.Fp8E4M3.RoundToGrid(absMax / (MiniFloatCodec.Fp4E2M1.MaxNormal * tensorScale)) : 0f;

        public float Divisor(float scale, float tensorScale) => scale * tensorScale;

        public bool DivisorIsPowerOfTwo => false;

        public Vector256<float> Scales(Vector256<float> absMax, float tensorScale)
        {
            if (!(tensorScale > 0))
            {
                return Vector256<float>.Zero;
            }

            // E4M3 rounding as encode-then-decode: the code of amax / (6·g) (saturating, round half to even: the vector
            // encoder is held to the scalar codec by the exhaustive tests), decoded from its bits. Codes are ≤ 0x7E.
            Vector256<int> code = s_scaleEncoder.Encode(absMax / Vector256.Create(MiniFloatCodec.Fp4E2M1.MaxNormal * tensorScale));
            Vector256<int> normal = (code << 20) + Vector256.Create((127 - 7) << 23);
            Vector256<float> subnormal = Vector256.ConvertToSingle(code) * Vector256.Create(1f / 512);   // m · 2^-9
            return Vector256.ConditionalSelect(Vector256.LessThan(code, Vector256.Create(8)).AsSingle(), subnormal, normal.AsSingle());
        }

        public Vector256<float> Divisors(Vector256<float> scales, float tensorScale) => scales * Vector256.Create(tensorScale);
    }

    private static readonly MiniFloatPrimitives.VectorEncoder s_scaleEncoder = new(MiniFloatCodec.Fp8E4M3);

    private protected override void EncodeSegment(ReadOnlySpan<float> x, in SegmentParameters parameters, RtnOptions options, Span<byte> codes) =>
        MiniFloatPrimitives.QuantizeFinite(MiniFloatCodec.Fp4E2M1, x, parameters.Scale * parameters.TensorScale, saturate: true, codes);

    internal override bool SupportsSegmentCodec => true;

    // The same product s_b·g as the tensor decoder, so a segment decodes to the same floats either way.
    internal override void DecodeSegment(ReadOnlySpan<byte> codes, in SegmentParameters parameters, RtnOptions options, Span<float> destination) =>
        MiniFloatPrimitives.Dequantize(MiniFloatCodec.Fp4E2M1, codes, parameters.Scale * parameters.TensorScale, destination);

    private protected override void DecodeSegment(ReadOnlySpan<byte> codes, QuantizedTensor tensor, int group, Span<float> destination) =>
        MiniFloatPrimitives.Dequantize(MiniFloatCodec.Fp4E2M1, codes, tensor.ScalesArray[group] * tensor.GlobalScale, destination);
}
