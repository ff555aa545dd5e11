// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;

namespace Compression.Composition;

/// <summary>
/// <see cref="ITunableTensor"/> on a sum of two representations: θ = [the main part's θ, then the correction's θ]. A
/// child that is not an <see cref="ITunableTensor"/> contributes no parameters and its fixed reconstruction.
/// </summary>
/// <remarks>Ŵ(θ) = Ŵ_main(θ_main) + Ŵ_correction(θ_correction), added as decompression adds them, so the stored θ
/// reconstructs bit for bit when each child does; ∂L/∂Ŵ flows unchanged to both children.</remarks>
public sealed partial class ResidualTensor
{
    private int MainCount => (Main as ITunableTensor)?.TunableParameterCount ?? 0;

    /// <inheritdoc/>
    public int TunableParameterCount => MainCount + ((Correction as ITunableTensor)?.TunableParameterCount ?? 0);

    /// <inheritdoc/>
    public void GetTunableParameters(Span<float> parameters)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        int split = MainCount;
        (Main as ITunableTensor)?.GetTunableParameters(parameters[..split]);
        (Correction as ITunableTensor)?.GetTunableParameters(parameters[split..]);
    }

    /// <inheritdoc/>
    public void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        RequireLength(weight.Length, ElementCount, nameof(weight));
        int split = MainCount;
        ReconstructChild(Main, parameters[..split], weight);
        float[] correction = new float[weight.Length];
        ReconstructChild(Correction, parameters[split..], correction);
        TensorPrimitives.Add(weight, correction, weight);
    }

    /// <inheritdoc/>
    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        RequireLength(weightGradient.Length, ElementCount, nameof(weightGradient));
        RequireLength(parameterGradient.Length, TunableParameterCount, nameof(parameterGradient));
        int split = MainCount;
        (Main as ITunableTensor)?.BackpropagateReconstruction(parameters[..split], weightGradient, parameterGradient[..split]);
        (Correction as ITunableTensor)?.BackpropagateReconstruction(parameters[split..], weightGradient, parameterGradient[split..]);
    }

    /// <inheritdoc/>
    /// <remarks>A new <see cref="ResidualTensor"/> of the children's own <see cref="ITunableTensor.WithTunableParameters"/>
    /// results; a child that is not tunable is kept as it is (it is immutable).</remarks>
    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters)
    {
        RequireLength(parameters.Length, TunableParameterCount, nameof(parameters));
        int split = MainCount;
        CompressedTensor main = Main is ITunableTensor m ? m.WithTunableParameters(parameters[..split]) : Main;
        CompressedTensor correction = Correction is ITunableTensor c ? c.WithTunableParameters(parameters[split..]) : Correction;
        return new ResidualTensor(main, correction);
    }

    private static void ReconstructChild(CompressedTensor child, ReadOnlySpan<float> parameters, Span<float> weight)
    {
        if (child is ITunableTensor tunable)
        {
            tunable.Reconstruct(parameters, weight);
        }
        else
        {
            child.DecompressTo(weight);
        }
    }

    private static void RequireLength(long actual, long expected, string parameterName)
    {
        if (actual != expected)
        {
            ThrowHelper.ThrowArgument(parameterName, $"The span holds {actual} values; {expected} expected.");
        }
    }
}
