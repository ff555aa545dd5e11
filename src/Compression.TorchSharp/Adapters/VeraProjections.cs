// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Adapters;

/// <summary>
/// VeRA's frozen random pair, shared by every adapted layer of a model: A [r, maxIn] and B [maxOut, r], sized to the
/// largest input and output widths among the layers; a layer of width (in, out) uses the leading block A[:, :in] and
/// B[:out, :] (views, so the model holds one copy). Both are Kaiming-uniform from one seeded generator, as PEFT's
/// <c>projection_prng_key</c>, so the same seed rebuilds them bit for bit.
/// </summary>
public sealed class VeraProjections : IDisposable
{
    /// <summary>Draws the pair.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size below 1.</exception>
    public VeraProjections(int rank, long maxInFeatures, long maxOutFeatures, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rank, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxInFeatures, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxOutFeatures, 1);
        (Rank, Seed) = (rank, seed);
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)seed);
        A = AdapterLinear.KaimingUniform(rank, maxInFeatures, generator);
        B = AdapterLinear.KaimingUniform(maxOutFeatures, rank, generator);
    }

    /// <summary>The rank r.</summary>
    public int Rank { get; }

    /// <summary>The seed (PEFT's <c>projection_prng_key</c>).</summary>
    public int Seed { get; }

    /// <summary>The shared down projection, [r, maxIn] (PEFT's <c>vera_A</c>).</summary>
    public Tensor A { get; }

    /// <summary>The shared up projection, [maxOut, r] (PEFT's <c>vera_B</c>).</summary>
    public Tensor B { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
