// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Optimizers;

/// <summary>
/// Hyper-parameters of <see cref="GaLoreAdamW"/> (Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient
/// Low-Rank Projection", 2024). The AdamW ones (learning rate, betas, ε, weight decay) apply to every parameter; the
/// GaLore ones to the parameters chosen for projection.
/// </summary>
/// <example>
/// <code>
/// using var optimizer = new GaLoreAdamW(model.named_parameters(), new GaLoreOptions { Rank = 64, LearningRate = 1e-2 });
/// // ordinary loop: optimizer.zero_grad(); loss.backward(); optimizer.step();
/// </code>
/// </example>
public sealed record GaLoreOptions
{
    /// <summary>Rank r of the gradient subspace. At least 1; default 128 (the paper's setting for 60M–350M models).</summary>
    public int Rank { get; init; } = 128;

    /// <summary>Steps between projection refreshes (T, <c>update_proj_gap</c>): a projected parameter recomputes its
    /// projection on its steps 1, 1 + T, 1 + 2T, …. At least 1; default 200.</summary>
    public int UpdateProjectionGap { get; init; } = 200;

    /// <summary>α (<c>galore_scale</c>), multiplying the update projected back to full size. Positive; default 0.25.</summary>
    public double Scale { get; init; } = 0.25;

    /// <summary>Learning rate η (the parameter groups' initial rate; schedulers change the groups'). Positive; default 1e-3.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>β₁, the first moment's decay. In [0, 1); default 0.9.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>β₂, the second moment's decay. In [0, 1); default 0.999.</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>ε added to √v̂. Non-negative; default 1e-8 (<c>torch.optim.AdamW</c>'s).</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Decoupled weight decay λ: every step multiplies the weights by 1 − η·λ before the update, as AdamW does.
    /// Non-negative; default 0.01 (<c>torch.optim.AdamW</c>'s).</summary>
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>Which side of each gradient is projected. Default <see cref="GaLoreProjectionType.Auto"/>.</summary>
    public GaLoreProjectionType ProjectionType { get; init; } = GaLoreProjectionType.Auto;

    /// <summary>How refreshes compute the singular vectors. Default <see cref="GaLoreSvdMethod.Exact"/>.</summary>
    public GaLoreSvdMethod SvdMethod { get; init; } = GaLoreSvdMethod.Exact;

    /// <summary>Seed of the randomized SVD's test matrices (each parameter and refresh derives its own stream from it,
    /// so a run and a run resumed from a saved state draw the same numbers). Default 0.</summary>
    public long Seed { get; init; }

    /// <summary>
    /// Chooses the parameters to project, given a name and the parameter; the others get plain AdamW. Null, the
    /// default, projects every 2-D parameter with min(m, n) &gt; <see cref="Rank"/> (a smaller one would save nothing).
    /// A chosen parameter must be 2-D with min(m, n) ≥ <see cref="Rank"/>.
    /// </summary>
    /// <example><c>ProjectParameter = (name, _) =&gt; name.Contains("layers.", StringComparison.Ordinal)</c> projects the
    /// attention and MLP matrices but not the embedding or the head, as the paper does.</example>
    public Func<string, Tensor, bool>? ProjectParameter { get; init; }

    /// <summary>Q-GaLore: INT4 projection matrices and lazy layer-wise refreshes; null (the default) for GaLore's
    /// full-precision projections refreshed every <see cref="UpdateProjectionGap"/> steps.</summary>
    public QGaLoreOptions? Quantization { get; init; }

    /// <summary>Checks every value.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is outside its documented range.</exception>
    public void Validate()
    {
        if (Rank < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Rank), Rank, "Rank must be at least 1.");
        }

        if (UpdateProjectionGap < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(UpdateProjectionGap), UpdateProjectionGap, "UpdateProjectionGap must be at least 1 step.");
        }

        if (!(Scale > 0) || double.IsInfinity(Scale))
        {
            throw new ArgumentOutOfRangeException(nameof(Scale), Scale, "Scale must be positive and finite.");
        }

        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
        {
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive and finite.");
        }

        if (!(Beta1 >= 0 && Beta1 < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(Beta1), Beta1, "Beta1 must lie in [0, 1).");
        }

        if (!(Beta2 >= 0 && Beta2 < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(Beta2), Beta2, "Beta2 must lie in [0, 1).");
        }

        if (!(Epsilon >= 0) || double.IsInfinity(Epsilon))
        {
            throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, "Epsilon must be non-negative and finite.");
        }

        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay))
        {
            throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must be non-negative and finite.");
        }

        if (!Enum.IsDefined(ProjectionType))
        {
            throw new ArgumentOutOfRangeException(nameof(ProjectionType), ProjectionType, "ProjectionType must be Auto, Left or Right.");
        }

        if (!Enum.IsDefined(SvdMethod))
        {
            throw new ArgumentOutOfRangeException(nameof(SvdMethod), SvdMethod, "SvdMethod must be Exact or Randomized.");
        }

        Quantization?.Validate();
    }
}
