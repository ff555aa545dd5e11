// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>
/// Simulates declared activation quantization (<see cref="ActivationQuantization"/>) on a linear layer's input:
/// quantizes and dequantizes it as an FP8 kernel would see it, so that a model's measured accuracy is that of the
/// quantized scheme. This library has no FP8 matmul; vLLM runs the real one.
/// </summary>
/// <remarks>
/// <para>Dynamic per-token FP8 E4M3, for each row x of the input's last dimension (a token's features): the scale is
/// s = max|x| / 448 in float32 (448 is E4M3's largest value), each element is divided by s, rounded to E4M3 with ties
/// to even and saturation at ±448, and multiplied back by s. The result equals, bit for bit, the scalar computation
/// <c>MiniFloatCodec.Fp8E4M3.Decode(MiniFloatCodec.Fp8E4M3.Encode(x / s)) * s</c> in float32.</para>
/// <para>Edge cases: a row of zeros (or one whose s underflows to 0) uses s = 1, so zeros stay zeros (signs kept).
/// A row holding a NaN or ±∞ comes out entirely NaN (its max |x| is NaN or ∞), as a real kernel's scale would poison
/// the row too; the model's output is then NaN, which perplexity reports rather than hides.</para>
/// <para>Inputs of other floating types (bfloat16, float16) are computed in float32 and cast back. vLLM's kernel
/// multiplies by the reciprocal of the scale and clamps it below at 1/(448·512); the figures here can therefore differ
/// from vLLM's in the last bit of a few elements, never in the scheme.</para>
/// </remarks>
public static class ActivationFakeQuantization
{
    // E4M3's step in each binade 2^e, e = −6 … 8 (below −6: subnormals, with the step of binade −6): 2^(e − 3).
    private const int MinExponent = -6, MaxExponent = 8, MantissaBits = 3;

    /// <summary>Quantizes and dequantizes <paramref name="input"/> as <paramref name="activations"/> declares (see the
    /// remarks); the result has the input's shape, dtype and device, and the input is not modified.</summary>
    /// <exception cref="ArgumentException">The input is not floating point or has no dimension.</exception>
    public static Tensor Apply(Tensor input, ActivationQuantization activations)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(activations);
        if (!input.is_floating_point() || input.ndim == 0)
        {
            throw new ArgumentException($"Activations must be a floating tensor with at least one dimension, not {input.dtype} [{string.Join(", ", input.shape)}].", nameof(input));
        }

        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor x = input.to(ScalarType.Float32);
        float max = MiniFloatCodec.Fp8E4M3.MaxNormal;
        Tensor amax = x.abs().amax([-1], keepdim: true);                           // NaN propagates
        Tensor scale = amax / max;
        scale = torch.where(scale == 0, torch.ones_like(scale), scale);
        Tensor v = (x / scale).clamp(-max, max);                                   // saturation; NaN stays NaN

        // Round to E4M3: the step is 2^(e − 3) for the binade e of |v| (frexp: v = m·2^E, m in [0.5, 1), e = E − 1),
        // e at least −6. Dividing and multiplying by a power of two is exact, and round() is ties-to-even, so this is
        // the format's rounding exactly. The steps come from a table of exact constants, not from pow().
        var table = new float[MaxExponent - MinExponent + 1];
        for (int e = MinExponent; e <= MaxExponent; e++)
        {
            table[e - MinExponent] = MathF.ScaleB(1f, e - MantissaBits);
        }

        (Tensor _, Tensor exponent) = v.frexp();
        Tensor index = (exponent.to(ScalarType.Int64) - 1).clamp(MinExponent, MaxExponent) - MinExponent;
        Tensor step = torch.tensor(table, device: x.device).index_select(0, index.flatten()).view(v.shape);
        Tensor q = (v / step).round() * step;
        Tensor result = (q * scale).to(input.dtype);
        if (input.requires_grad)
        {
            // Training through the layer (distillation): rounding has no useful gradient, so pass it straight through.
            using var withGrad = torch.enable_grad();
            result = input + (result - input).detach();
        }

        return result.MoveToOuterDisposeScope();
    }
}
