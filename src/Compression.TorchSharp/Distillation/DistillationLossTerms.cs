// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using static TorchSharp.torch;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// One evaluation of a <see cref="DistillationLoss"/>: the weighted total to back-propagate and each term's unweighted
/// value (0 for a term whose weight is 0, which is not computed).
/// </summary>
/// <param name="Total">The scalar to call <c>backward()</c> on: Σ weight·term. The caller disposes it.</param>
/// <param name="Logit">The divergence between the soft targets (already multiplied by T²).</param>
/// <param name="Label">The cross-entropy with the hard labels, in nats per token.</param>
/// <param name="Hidden">The hidden-state loss, averaged over the mapped layer pairs.</param>
/// <param name="Attention">The attention-transfer KL, averaged over the mapped layer pairs.</param>
public sealed record DistillationLossTerms(Tensor Total, double Logit, double Label, double Hidden, double Attention);
