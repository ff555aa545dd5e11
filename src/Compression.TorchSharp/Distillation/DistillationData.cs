// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Distillation;

/// <summary>Batches for <see cref="Distiller.Train"/> cut from a token stream.</summary>
public static class DistillationData
{
    /// <summary>
    /// An endless, deterministic sequence of batches [<paramref name="batchSize"/>, <paramref name="window"/>] (int64) of
    /// windows starting at uniformly drawn offsets of <paramref name="tokens"/> (a seeded <see cref="Random"/>), each
    /// optionally preceded by <paramref name="bos"/> (then a row holds BOS and window − 1 tokens of the stream). The
    /// same arguments always give the same batches, so a resumed run can skip the ones it consumed; each enumeration
    /// starts again from the first batch.
    /// </summary>
    /// <remarks>Each tensor is created when the enumerator moves to it; <see cref="Distiller"/> disposes the batches it
    /// pulls (they are created inside its per-step dispose scope).</remarks>
    /// <exception cref="ArgumentException"><paramref name="window"/> &lt; 2, <paramref name="batchSize"/> &lt; 1, or the
    /// stream is shorter than one window.</exception>
    public static IEnumerable<Tensor> RandomWindows(int[] tokens, int window, int batchSize, int seed, int? bos = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (window < 2)
        {
            throw new ArgumentException($"A window holds inputs and their next tokens, so at least 2 tokens; got {window}.", nameof(window));
        }

        if (batchSize < 1)
        {
            throw new ArgumentException($"The batch size must be at least 1; got {batchSize}.", nameof(batchSize));
        }

        int fromStream = bos is null ? window : window - 1;
        if (tokens.Length < fromStream)
        {
            throw new ArgumentException($"{tokens.Length} tokens hold no window of {fromStream}.", nameof(tokens));
        }

        return Generate(tokens, window, batchSize, seed, bos, fromStream);
    }

    private static IEnumerable<Tensor> Generate(int[] tokens, int window, int batchSize, int seed, int? bos, int fromStream)
    {
        var random = new Random(seed);
        int offsets = tokens.Length - fromStream + 1;
        while (true)
        {
            var batch = new long[batchSize * window];
            for (int row = 0; row < batchSize; row++)
            {
                int start = random.Next(offsets);
                int at = row * window;
                if (bos is int begin)
                {
                    batch[at++] = begin;
                }

                for (int t = 0; t < fromStream; t++)
                {
                    batch[at + t] = tokens[start + t];
                }
            }

            yield return torch.tensor(batch, [batchSize, window]);
        }
    }
}
