// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;
using TorchSharp.Modules;

namespace Compression;

public static partial class Quantizer
{
    /// <summary>
    /// Replaces each layer quantized in <paramref name="report"/> by a <see cref="QuantizedLinear"/> holding its packed
    /// weight, so the model's memory really shrinks; outputs stay equal to the fake-quantized model's (a layer's declared
    /// input-activation quantization moves from the fake-quantized layer's forward hook into the new module).
    /// </summary>
    /// <param name="model">The model <see cref="Apply(CausalLanguageModel, QuantizerOptions)"/> quantized.</param>
    /// <param name="report">That call's report (its layers carry the quantized weights).</param>
    /// <returns>The number of layers replaced.</returns>
    /// <exception cref="ArgumentException">A layer of the report is not a linear layer of the model (already packed, or
    /// the report belongs to another model), or carries no weight.</exception>
    public static int Pack(CausalLanguageModel model, QuantizationReport report)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(report);
        Dictionary<string, Linear> linear = model.CanonicalModules().Where(m => m.Module is Linear)
            .ToDictionary(m => m.Name, m => (Linear)m.Module);
        foreach (LayerQuantization layer in report.Layers)
        {
            if (!linear.TryGetValue(layer.Name, out Linear? module))
            {
                throw new ArgumentException($"'{layer.Name}' is not a linear layer of this model (already packed?).", nameof(report));
            }

            if (layer.Weight is null || layer.Weight.Rows != module.out_features || layer.Weight.Columns != module.in_features)
            {
                throw new ArgumentException($"The report's weight for '{layer.Name}' is missing or does not fit the layer.", nameof(report));
            }
        }

        foreach (LayerQuantization layer in report.Layers)
        {
            model.ReplaceLinear(layer.Name, new QuantizedLinear(layer.Weight!, linear[layer.Name].bias, layer.InputActivations));
        }

        return report.Layers.Count;
    }
}
