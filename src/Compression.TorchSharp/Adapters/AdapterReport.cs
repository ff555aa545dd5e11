// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Collections.Generic;

namespace Compression.TorchSharp.Adapters;

/// <summary>What <see cref="Lora.Apply"/> did: the adapted modules and the parameter counts PEFT's
/// <c>print_trainable_parameters</c> shows.</summary>
/// <param name="Method">The adapter method.</param>
/// <param name="Modules">The adapted modules' names (<c>model.layers.0.self_attn.q_proj</c>), in model order.</param>
/// <param name="TrainableParameters">Values that receive gradients: the adapters' (VeRA's shared random pair is frozen).</param>
/// <param name="TotalParameters">All values of the adapted model: base parameters (a packed weight counts its rows ×
/// columns), adapters and VeRA's shared pair once.</param>
public sealed record AdapterReport(AdapterMethod Method, IReadOnlyList<string> Modules, long TrainableParameters, long TotalParameters)
{
    /// <summary>Trainable / total.</summary>
    public double TrainableFraction => TotalParameters == 0 ? 0 : (double)TrainableParameters / TotalParameters;

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Method} on {Modules.Count} modules: trainable params {TrainableParameters:N0} || all params {TotalParameters:N0} || trainable% {100 * TrainableFraction:F4}";
}
