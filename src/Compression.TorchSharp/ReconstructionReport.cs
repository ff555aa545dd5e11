// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using Compression.Distillation;

namespace Compression;

/// <summary>One layer compressed and refitted by <see cref="Reconstructor"/>.</summary>
/// <param name="Name">The layer (<c>model.layers.0.mlp.up_proj</c>).</param>
/// <param name="Fit">The fit: the stored tensor and the relative output error before and after, on the layer's own
/// calibration inputs (the outputs of the already compressed blocks before it).</param>
public sealed record LayerReconstruction(string Name, LayerReconstructionResult Fit);

/// <summary>What <see cref="Reconstructor.Apply"/> did.</summary>
/// <param name="Layers">Every targeted layer, in the order they were compressed.</param>
/// <param name="Elapsed">Wall-clock time of the call.</param>
public sealed record ReconstructionReport(IReadOnlyList<LayerReconstruction> Layers, TimeSpan Elapsed);
