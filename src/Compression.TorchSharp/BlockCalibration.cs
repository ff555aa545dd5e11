// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Compression.Calibration;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>
/// llm-compressor's sequential pipeline, shared by <see cref="Quantizer"/> and <see cref="Pruner"/>: calibration
/// sequences are embedded once; for each block (decoder layer) forward pre-hooks on its targeted linear layers feed
/// their inputs to a <see cref="HessianAccumulator"/> per layer while the block runs on the current hidden states,
/// the layers are compressed, and the block runs again with its compressed weights to produce the next block's
/// inputs. Only one block's activations (one hidden state per sequence) are held.
/// </summary>
internal static class BlockCalibration
{
    /// <summary>Calls <paramref name="compress"/> once per target: through <see cref="Run"/> when
    /// <paramref name="withHessian"/> (block order, with each layer's input Hessian), otherwise in target order with a
    /// null Hessian and no forward passes.</summary>
    public static void ForEachTarget(CausalLanguageModel model, IReadOnlyList<int[]> calibration, IReadOnlyDictionary<string, Linear> linear,
        IReadOnlyList<string> targets, bool withHessian, Action<string, HessianAccumulator?> compress, CancellationToken cancellationToken)
    {
        if (withHessian)
        {
            Run(model, calibration, linear, targets, compress, cancellationToken);
            return;
        }

        foreach (string name in targets)
        {
            cancellationToken.ThrowIfCancellationRequested();
            compress(name, null);
        }
    }

    /// <summary>Calls <paramref name="compress"/> once per target, in block order, with the layer's input Hessian;
    /// targets outside the blocks come last with a null Hessian. Runs under <c>no_grad</c>.</summary>
    public static void Run(CausalLanguageModel model, IReadOnlyList<int[]> calibration, IReadOnlyDictionary<string, Linear> linear,
        IReadOnlyList<string> targets, Action<string, HessianAccumulator?> compress, CancellationToken cancellationToken)
    {
        using var noGrad = torch.no_grad();
        var pending = new HashSet<string>(targets, StringComparer.Ordinal);
        var hidden = new List<Tensor>(calibration.Count);
        try
        {
            foreach (int[] sequence in calibration)
            {
                using Tensor ids = torch.tensor(sequence.Select(i => (long)i).ToArray(), [1, sequence.Length]);
                hidden.Add(model.Embed(ids));
            }

            foreach ((string prefix, nn.Module<Tensor, Tensor> block) in model.Blocks)
            {
                string[] inBlock = targets.Where(t => t.StartsWith(prefix + ".", StringComparison.Ordinal)).ToArray();
                var accumulators = inBlock.ToDictionary(name => name, name => new HessianAccumulator((int)linear[name].in_features));
                var hooks = inBlock.Select(name => linear[name].register_forward_pre_hook((_, input) =>
                {
                    using Tensor rows = input.reshape(-1, input.shape[^1]);
                    accumulators[name].Add(rows.ToDenseTensor());
                    return input;
                })).ToArray();
                try
                {
                    foreach (Tensor h in hidden)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        using Tensor discarded = block.call(h);
                    }
                }
                finally
                {
                    foreach (var hook in hooks)
                    {
                        hook.remove();
                    }
                }

                foreach (string name in inBlock)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    compress(name, accumulators[name]);
                    pending.Remove(name);
                }

                // The next block sees this block's output with compressed weights.
                for (int i = 0; i < hidden.Count; i++)
                {
                    Tensor next = block.call(hidden[i]);
                    hidden[i].Dispose();
                    hidden[i] = next;
                }
            }

            foreach (string name in targets.Where(pending.Contains))
            {
                cancellationToken.ThrowIfCancellationRequested();
                compress(name, null);
            }
        }
        finally
        {
            foreach (Tensor h in hidden)
            {
                h.Dispose();
            }
        }
    }
}
