// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using Compression.TorchSharp;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression;

public static partial class Pruner
{
    /// <summary>
    /// Sets every weight that <paramref name="report"/>'s masks pruned back to zero: call it after each optimizer step
    /// while fine-tuning (or distilling) a pruned model, so the sparsity pattern survives training. Gradual pruning
    /// (<see cref="Pruning.CubicSparsitySchedule"/>) calls <see cref="Apply"/> at its pruning steps and this in between.
    /// </summary>
    /// <returns>The number of layers masked.</returns>
    /// <exception cref="ArgumentException">A layer of the report is not a linear layer of the model, or its mask does not
    /// fit the layer.</exception>
    public static int ReapplyMasks(CausalLanguageModel model, PruningModelReport report)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(report);
        Dictionary<string, Linear> linear = model.CanonicalModules().Where(m => m.Module is Linear).ToDictionary(m => m.Name, m => (Linear)m.Module);
        using var noGrad = torch.no_grad();
        foreach (LayerPruning layer in report.Layers)
        {
            SparsityMask mask = layer.Weight?.SparsityMask ?? throw new ArgumentException($"The report's layer '{layer.Name}' carries no mask.", nameof(report));
            if (!linear.TryGetValue(layer.Name, out Linear? module) || module.weight!.shape[0] != mask.Rows || module.weight.shape[1] != mask.Columns)
            {
                throw new ArgumentException($"'{layer.Name}' is not a linear layer of this model of shape [{mask.Rows}, {mask.Columns}].", nameof(report));
            }

            var keep = new float[(long)mask.Rows * mask.Columns];
            byte[] bits = mask.ToBytes();
            for (long i = 0; i < keep.Length; i++)
            {
                keep[i] = (bits[i >> 3] >> (int)(i & 7) & 1) != 0 ? 1f : 0f;
            }

            using Tensor keepTensor = torch.tensor(keep, [mask.Rows, mask.Columns]);
            module.weight.mul_(keepTensor);
        }

        return report.Layers.Count;
    }
}
